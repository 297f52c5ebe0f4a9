// chat_client.mjs - the AI SDK 5 client as a browser's useChat runs it:
// DefaultChatTransport sends the chat, readUIMessageStream assembles the
// assistant message from relgate's UI message stream.
//   node chat_client.mjs URL TOKEN TEXT [--map] [--origin O]
// --map: prepareSendMessagesRequest maps the chat to relgate's own body
// ({threadId, messages:[{role, content}]}); without it the transport's
// own body goes out unchanged.  Prints one JSON line: {"text", "parts",
// "error"} (error: the message of the client's error, or null); exit 0
// when the stream was read to its end, 1 otherwise.
import { DefaultChatTransport, readUIMessageStream } from 'ai';

const [url, token, text, ...rest] = process.argv.slice(2);
const map = rest.includes('--map');
const oi = rest.indexOf('--origin');
const headers = { authorization: `Bearer ${token}` };
if (oi >= 0) headers.origin = rest[oi + 1];

const transport = new DefaultChatTransport({
	api: url,
	headers,
	prepareSendMessagesRequest: map ?
	    ({ id, messages }) => ({
		    body: {
			    threadId: id,
			    messages: messages.map((m) => ({
				    role: m.role,
				    content: m.parts.filter((p) => p.type === 'text')
					.map((p) => p.text).join(''),
			    })),
		    },
	    }) :
	    undefined,
});

let error = null;
let last;
try {
	const stream = await transport.sendMessages({
		chatId: 'thread-e2e',
		messages: [{ id: 'u1', role: 'user', parts: [{ type: 'text', text }] }],
		trigger: 'submit-message',
		messageId: undefined,
		abortSignal: undefined,
	});
	for await (const msg of readUIMessageStream({
		stream,
		onError: (e) => { error = e?.message ?? String(e); },
	}))
		last = msg;
} catch (e) {
	error = e?.message ?? String(e);
}
const textOut = (last?.parts ?? []).filter((p) => p.type === 'text').map((p) => p.text).join('');
process.stdout.write(JSON.stringify({ text: textOut, parts: last?.parts ?? [], error }) + '\n');
process.exit(last ? 0 : 1);
