"""The benchmark of modelrunner against its peers (``make bench``)."""
