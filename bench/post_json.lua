-- wrk script of bench/serve.sh and bench/deploy.sh: POST the JSON file named after `--` on the
-- wrk command line.
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  f:close()
end
