-- chat_wrk.lua - wrk script of bench/chat.sh's 429 path: POST the JSON
-- body CHAT_BODY with Content-Type and one Authorization line of
-- CHAT_TOKENS_FILE in turn (a pool of users); counts the statuses and
-- prints, at the end, one JSON line: req/s, latency p50/p90/p99 (ms) and
-- the status mix.
local threads = {}

function setup(thread)
	thread:set("id", #threads)
	table.insert(threads, thread)
end

function init(args)
	local body = os.getenv("CHAT_BODY") or "{}"
	local lines = {}
	local f = assert(io.open(os.getenv("CHAT_TOKENS_FILE"), "r"))
	for line in f:lines() do
		local v = line:match("^[Aa]uthorization:%s*(.-)%s*$")
		if v then table.insert(lines, v) end
	end
	f:close()
	assert(#lines > 0, "no Authorization line in CHAT_TOKENS_FILE")
	reqs = {}
	for i, auth in ipairs(lines) do
		reqs[i] = wrk.format("POST", wrk.path, {
			["Content-Type"] = "application/json",
			["Authorization"] = auth,
		}, body)
	end
	nreq = #reqs
	at = id % nreq
	statuses = {}
end

function request()
	at = at % nreq + 1
	return reqs[at]
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
	local mix = {}
	for _, t in ipairs(threads) do
		for k, v in pairs(t:get("statuses")) do
			mix[k] = (mix[k] or 0) + v
		end
	end
	local parts = {}
	for k, v in pairs(mix) do
		table.insert(parts, string.format('"%d":%d', k, v))
	end
	table.sort(parts)
	local e = summary.errors
	io.write(string.format(
		'{"requests":%d,"seconds":%.3f,"rps":%.0f,"p50Ms":%.3f,"p90Ms":%.3f,"p99Ms":%.3f,"maxMs":%.3f,' ..
		'"status":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
		summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
		latency.max / 1000, table.concat(parts, ","), e.connect, e.read, e.write, e.timeout))
end
