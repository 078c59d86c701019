"""The catalog's pages over a real registry, served for real on 127.0.0.1 (read-only pages)."""

from __future__ import annotations

import html as html_lib
import json
import re
import time
from pathlib import Path

import httpx

from modelrunner.registry import Registry
from support.catalog_helpers import NASTY, add_models, get_ok, pages, write_bundle


def test_every_page_renders_for_an_empty_registry(ui: httpx.Client) -> None:
    for path in ["/ui/", "/ui/endpoints", "/ui/endpoints/status", "/ui/audit", "/ui/pipelines", "/ui/signin"]:
        get_ok(ui, path)
    assert "No models yet" in ui.get("/ui/").text
    assert "No endpoints yet" in ui.get("/ui/endpoints").text
    assert ui.get("/", follow_redirects=False).headers["location"] == "/ui/"
    missing = ui.get("/ui/models/nope")
    assert missing.status_code == 404 and "unknown model &#39;nope&#39;" in missing.text


def test_500_models_are_paginated_searchable_sortable_and_filtered(
    ui: httpx.Client, registry: Registry
) -> None:
    add_models(registry, 500)
    get_ok(ui, "/ui/")  # warm: templates compiled
    started = time.perf_counter()
    first = get_ok(ui, "/ui/")
    elapsed_ms = (time.perf_counter() - started) * 1000
    server_ms = first.headers["server-timing"].partition("dur=")[2]
    print(f"\nmodels list of 500 models: {server_ms} ms server time, {elapsed_ms:.0f} ms round trip")
    assert "500 of 500" in first.text and "page 1 of 10" in first.text
    assert first.text.count('<tr>\n  <td><a href="/ui/models/') == 50
    last = get_ok(ui, "/ui/?page=10").text
    assert "model-0499" in last and "model-0000" not in last
    assert "page 10 of 10" in get_ok(ui, "/ui/?page=99").text  # past the end: the last page

    found = get_ok(ui, "/ui/?q=number+42+model-0042").text
    assert "model-0042" in found and "1 of 500" in found  # search reads descriptions
    onnx_mit = get_ok(ui, "/ui/?flavor=onnx&license=MIT").text  # i % 3 == 2 and i % 2 == 0
    assert re.search(r"(\d+) of 500", onnx_mit).group(1) == str(len([i for i in range(500) if i % 6 == 2]))
    team = get_ok(ui, "/ui/?tag=team%3Dt3").text
    assert "model-0003" in team and "model-0004" not in team
    newest_first = get_ok(ui, "/ui/?sort=updated&order=desc").text
    assert newest_first.index("model-0499") < newest_first.index("model-0498")
    by_accuracy = get_ok(ui, "/ui/?sort=name&order=desc").text
    assert by_accuracy.index("model-0499") < by_accuracy.index("model-0450")


def test_odd_text_is_escaped_everywhere(ui: httpx.Client, registry: Registry, tmp_path: Path) -> None:
    bundle = write_bundle(
        tmp_path / "b",
        "odd.name-1",
        description=NASTY,
        tags={"<t>": '"><img src=x>'},
        metrics={"<script>m</script>": 1.0},
        license="MIT",
    )
    registry.push(bundle, alias="production")
    registry.push(bundle)
    registry.set_endpoint("odd", "odd.name-1@production")
    registry.record("note", "odd.name-1", None, {"why": NASTY})
    for path in pages("odd.name-1", 1):
        html = get_ok(ui, path).text
        assert "<script>alert" not in html and "<img src=x>" not in html, path
        assert "<script>m" not in html, path
    page = ui.get("/ui/models/odd.name-1").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;t&gt;=&#34;&gt;&lt;img src=x&gt;" in page


def test_model_page_shows_versions_contract_downloads_and_examples(
    ui: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    registry.push(write_bundle(tmp_path / "a", "digits", metrics={"accuracy": 0.91}), alias="production")
    registry.push(write_bundle(tmp_path / "b", "digits", inputs=("x", "z"), metrics={"accuracy": 0.95}))
    registry.set_gates("digits", ["accuracy >= 0.9"])
    registry.record_evaluation(
        "digits",
        1,
        metrics={"accuracy": 0.92},
        passed=True,
        dataset_name="test.csv",
        gates=[{"requirement": "accuracy >= 0.9", "value": 0.92, "passed": True}],
    )
    registry.set_endpoint("digits", "digits@production")
    html = get_ok(ui, "/ui/models/digits?version=1").text
    assert "0.91" in html and "0.95" in html and '<svg class="spark"' in html  # metrics side by side
    assert "accuracy &gt;= 0.9" in html and "report #1" in html
    assert "curl -s http://127.0.0.1:8080/v1/endpoints/digits/predict" in html
    python = html_lib.unescape(re.search(r'<pre class="code" id="python">(.*?)</pre>', html, re.S).group(1))
    compile(python, "example.py", "exec")  # the Python example is valid Python
    assert "json={'instances': [{'x': [0.0, 0.0]}]}" in python
    curl = html_lib.unescape(re.search(r'<pre class="code" id="curl">(.*?)</pre>', html, re.S).group(1))
    assert json.loads(curl.split("-d '")[1].rstrip("'")) == {"instances": [{"x": [0.0, 0.0]}]}
    proto = ui.get("/ui/models/digits/versions/1/contract.proto")
    assert proto.status_code == 200 and "attachment" in proto.headers["content-disposition"]
    from modelrunner.contract.proto import endpoint_package, render_proto

    assert proto.text == render_proto(registry.resolve("digits@1").contract, endpoint_package("digits"))
    schema = ui.get("/ui/models/digits/versions/2/contract.schema.json").json()
    assert "z" in str(schema)
    v2 = ui.get("/ui/models/digits/versions/2/contract.v2.json").json()
    assert v2["name"] == "digits" and v2["versions"] == ["1", "2"]
    assert ui.get("/ui/models/digits/versions/9/contract.proto").status_code == 404
    assert ui.get("/ui/models/digits/versions/1/secrets.txt").status_code == 404
    report = get_ok(ui, "/ui/models/digits/evaluations/1").text
    assert "test.csv" in report and "0.92" in report
    compare = get_ok(ui, "/ui/compare?model=digits&v=1&v=2").text
    assert "breaks clients" in compare and "input &#39;z&#39; is new and required" in compare
    assert "pass" in compare and "never evaluated" in compare  # gates: v1 evaluated, v2 not
    assert ui.get("/ui/compare?model=digits&v=7").status_code == 400
    for path, status, message in (
        ("/ui/models/digits?version=two", 400, "version must be a number, got &#39;two&#39;"),
        ("/ui/models/digits?version=9", 404, "model &#39;digits&#39; has no version 9"),
        ("/ui/compare?model=digits&v=x", 400, "versions to compare must be numbers"),
        ("/ui/pipelines/digits", 400, "digits@2 is a python model, not a pipeline"),
        ("/ui/models/digits/evaluations/99", 404, "no evaluation #99"),
    ):
        reply = ui.get(path)
        assert reply.status_code == status and message in reply.text, (path, reply.text[-600:])


def test_audit_filters_by_model_endpoint_action_and_actor(
    ui: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    registry.push(write_bundle(tmp_path / "a", "alpha"), actor="ann")
    registry.push(write_bundle(tmp_path / "b", "beta"), actor="bob")
    registry.set_endpoint("front", "beta@1", actor="bob")
    rows = lambda q: re.findall(r"<tr><td title", get_ok(ui, f"/ui/audit?{q}").text)  # noqa: E731
    assert len(rows("")) == 5  # 2 model.create, 2 version.create, 1 endpoint.set
    assert len(rows("model=alpha")) == 2
    assert len(rows("endpoint=front")) == 1
    assert len(rows("action=version.create")) == 2
    assert len(rows("actor=bob")) == 3
    assert len(rows("actor=bob&action=endpoint.set")) == 1
    assert "No audit entries match" in get_ok(ui, "/ui/audit?actor=nobody").text


def test_pipelines_are_listed_with_their_steps_and_drawn(
    ui: httpx.Client, registry: Registry, tmp_path: Path
) -> None:
    from modelrunner.pipelines.package import push_pipeline

    registry.push(write_bundle(tmp_path / "a", "scorer"), alias="production")
    spec = tmp_path / "pair.yaml"
    spec.write_text(
        'name: pair\ndescription: "<b>two</b> steps"\ninput: {x: "float32[2]"}\nsteps:\n'
        "  first: {model: scorer@production, inputs: {x: $input.x}}\n"
        "  second: {model: scorer@1, inputs: {x: $input.x}}\n"
        "output: {a: first.y, b: second.y}\n"
    )
    push_pipeline(spec, registry, alias="production")
    listed = get_ok(ui, "/ui/?flavor=pipeline").text
    assert "1 of 2" in listed and "first → scorer@1" in listed and "&lt;b&gt;two&lt;/b&gt;" in listed
    assert "second → scorer@1" in get_ok(ui, "/ui/pipelines").text
    dag = get_ok(ui, "/ui/pipelines/pair").text
    assert dag.count('<g class="node') == 4  # input, first, second, output
    assert "x → x: float32[2]" in dag and "y → a: int64" in dag and "scorer@1" in dag
