// token.mjs - bearer tokens for the end-to-end tests, made by jose (an
// implementation nobody at relgate wrote), printed on stdout.
//   node token.mjs --alg HS256 --secret S [--sub U | --no-sub] [--exp +S]
//                  [--nbf +S] [--iss I] [--aud A]
//   node token.mjs --alg RS256|ES256 --key-dir DIR ...   (DIR/<alg>.pem is
//                  the public key, created with the private one on first use)
//   node token.mjs --alg none ...                        (unsigned)
import { SignJWT, UnsecuredJWT, generateKeyPair, exportSPKI, exportPKCS8,
	importPKCS8 } from 'jose';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = {};
for (let i = 0; i < args.length; i++) {
	const k = args[i].replace(/^--/, '');
	if (k === 'no-sub') opt.noSub = true;
	else opt[k] = args[++i];
}
const now = Math.floor(Date.now() / 1000);
const rel = (v) => (v.startsWith('+') || v.startsWith('-') ? now + Number(v) : Number(v));
const claims = {};
if (!opt.noSub) claims.sub = opt.sub ?? 'demo';
const alg = opt.alg ?? 'HS256';

function decorate(j) {
	j.setIssuedAt(now).setExpirationTime(rel(opt.exp ?? '+3600'));
	if (opt.nbf) j.setNotBefore(rel(opt.nbf));
	if (opt.iss) j.setIssuer(opt.iss);
	if (opt.aud) j.setAudience(opt.aud);
	return j;
}

async function key() {
	if (alg === 'HS256') return new TextEncoder().encode(opt.secret);
	const priv = join(opt['key-dir'], `${alg}.key`);
	if (!existsSync(priv)) {
		const kp = await generateKeyPair(alg, { extractable: true });
		writeFileSync(priv, await exportPKCS8(kp.privateKey));
		writeFileSync(join(opt['key-dir'], `${alg}.pem`), await exportSPKI(kp.publicKey));
	}
	return importPKCS8(readFileSync(priv, 'utf8'), alg);
}

if (alg === 'none') {
	process.stdout.write(decorate(new UnsecuredJWT(claims)).encode() + '\n');
} else {
	const jwt = decorate(new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }));
	process.stdout.write(await jwt.sign(await key()) + '\n');
}
