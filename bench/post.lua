-- wrk script: POST the body stored in the file named by WRK_BODY (Content-Type WRK_CONTENT_TYPE, default JSON).
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
f:close()
