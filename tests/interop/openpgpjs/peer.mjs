// OpenPGP.js as a peer of pushprov's interop matrix, through its own JS API (not a SOP).
// One operation per run: a JSON request on stdin, a JSON answer on stdout. Binary values are
// base64; keys and certificates are armored text. Settings are OpenPGP.js's defaults unless the
// request names one ("config"), so the matrix shows what the library picks on its own.
import * as openpgp from 'openpgp';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const bytes = (b64) => new Uint8Array(Buffer.from(b64, 'base64'));
const b64 = (data) => Buffer.from(data).toString('base64');

const ENUMS = {
  sha1: openpgp.enums.hash.sha1,
  sha256: openpgp.enums.hash.sha256,
  sha384: openpgp.enums.hash.sha384,
  aes128: openpgp.enums.symmetric.aes128,
  aes256: openpgp.enums.symmetric.aes256,
  cast5: openpgp.enums.symmetric.cast5,
  zlib: openpgp.enums.compression.zlib,
};

function config(wanted = {}) {
  const out = {};
  if (wanted.hash) out.preferredHashAlgorithm = ENUMS[wanted.hash];
  if (wanted.cipher) out.preferredSymmetricAlgorithm = ENUMS[wanted.cipher];
  if (wanted.compress) out.preferredCompressionAlgorithm = ENUMS[wanted.compress];
  if (wanted.aead) out.aeadProtect = true;
  if (wanted.v6) out.v6Keys = true;
  return out;
}

const readKeys = (list) => Promise.all(list.map((armoredKey) => openpgp.readPrivateKey({ armoredKey })));
const readCerts = (list) => Promise.all(list.map((armoredKey) => openpgp.readKey({ armoredKey })));

async function readAnyMessage(data) {
  const text = Buffer.from(data).toString('latin1');
  if (text.startsWith('-----BEGIN PGP')) return openpgp.readMessage({ armoredMessage: text });
  return openpgp.readMessage({ binaryMessage: data });
}

async function run(req) {
  switch (req.op) {
    case 'version':
      return { version: openpgp.config.versionString };
    case 'generate': {
      const options = { userIDs: [{ name: req.name, email: req.email }], format: 'armored' };
      if (req.type === 'rsa') Object.assign(options, { type: 'rsa', rsaBits: req.bits || 2048 });
      const key = await openpgp.generateKey({ ...options, config: config(req.config) });
      return { secret: key.privateKey, cert: key.publicKey };
    }
    case 'sign_encrypt': {
      const message = await openpgp.createMessage({ binary: bytes(req.data) });
      const out = await openpgp.encrypt({
        message,
        encryptionKeys: await readCerts(req.recipients),
        signingKeys: req.signers.length ? await readKeys(req.signers) : undefined,
        format: req.armor ? 'armored' : 'binary',
        config: config(req.config),
      });
      return { message: b64(typeof out === 'string' ? Buffer.from(out) : out) };
    }
    case 'decrypt_verify': {
      const { data, signatures } = await openpgp.decrypt({
        message: await readAnyMessage(bytes(req.message)),
        decryptionKeys: await readKeys([req.key]),
        verificationKeys: await readCerts([req.verify]),
        format: 'binary',
      });
      let verified = signatures.length > 0;
      for (const sig of signatures) {
        try {
          await sig.verified;
        } catch {
          verified = false;
        }
      }
      return { plaintext: b64(data), verified };
    }
    case 'sign_detached': {
      const message = await openpgp.createMessage({ binary: bytes(req.data) });
      const sig = await openpgp.sign({
        message,
        signingKeys: await readKeys([req.key]),
        detached: true,
        format: 'binary',
      });
      return { signature: b64(sig) };
    }
    case 'verify_detached': {
      const message = await openpgp.createMessage({ binary: bytes(req.data) });
      const signature = await openpgp.readSignature({ binarySignature: bytes(req.signature) });
      const { signatures } = await openpgp.verify({
        message,
        signature,
        verificationKeys: await readCerts([req.cert]),
      });
      let verified = signatures.length > 0;
      for (const sig of signatures) {
        try {
          await sig.verified;
        } catch {
          verified = false;
        }
      }
      return { verified };
    }
    case 'clearsign': {
      const message = await openpgp.createCleartextMessage({ text: req.text });
      const signed = await openpgp.sign({ message, signingKeys: await readKeys([req.key]) });
      return { message: signed };
    }
    case 'verify_cleartext': {
      const message = await openpgp.readCleartextMessage({ cleartextMessage: req.message });
      const { data, signatures } = await openpgp.verify({
        message,
        verificationKeys: await readCerts([req.cert]),
      });
      let verified = signatures.length > 0;
      for (const sig of signatures) {
        try {
          await sig.verified;
        } catch {
          verified = false;
        }
      }
      return { text: data, verified };
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

try {
  process.stdout.write(JSON.stringify(await run(request)));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error && error.message ? error.message : error) }));
  process.exitCode = 1;
}
