// loopback.mjs - preloaded (node --import) by bench/chat.sh before the
// Portkey gateway: its server listens on the port it is given with no
// host (every interface); this makes a listen without a host listen on
// 127.0.0.1 only, so the benchmark stays on loopback.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
	if (typeof args[0] === 'number' && args[1] === undefined)
		args[1] = '127.0.0.1';
	return listen.apply(this, args);
};
