-- wa_accept.lua - wrk script: POST pre-signed, distinct WhatsApp webhooks.
-- WA_LINES names a file of "SIGNATURE BODY" lines (tests/rgtool wa-lines);
-- each wrk thread takes every THREADS-th line, so no two requests repeat
-- until the file runs out.
local lines, n, next_tid = {}, 0, 0
local threads = tonumber(os.getenv("THREADS") or "2")

function setup(thread)
	thread:set("tid", next_tid)
	next_tid = next_tid + 1
end

function init(args)
	local i = 0
	-- tid is this thread's global, set by setup()
	for line in io.lines(os.getenv("WA_LINES")) do
		if i % threads == tid then
			local sp = line:find(" ")
			lines[#lines + 1] = { line:sub(1, sp - 1), line:sub(sp + 1) }
		end
		i = i + 1
	end
end

function request()
	n = n + 1
	local l = lines[(n - 1) % #lines + 1]
	return wrk.format("POST", "/api/whatsapp/webhook", {
		["Content-Type"] = "application/json",
		["X-Hub-Signature-256"] = l[1],
	}, l[2])
end
