// panva/jose (6 and 5) on the other side of pushprov's JWE interop tests, used as its own
// documentation shows: a compact JWS, then a compact JWE of that string; no "cty", no options.
//
//   node interop.mjs seal < request.json   -> [{"token": "..."} | {"error": "..."} ...]
//   node interop.mjs open < request.json   -> [{"payload_b64": "...", ...} | {"error": "..."} ...]
//
// One process per direction handles every cell; each cell names its library ("jose6" or
// "jose5"). A refusal is reported per cell, never thrown: the tests assert which cells a
// library refuses in its default settings. Node refuses PKCS#1 v1.5 private decryption
// (Marvin, CVE-2023-46809) unless started with --security-revert=CVE-2023-46809; the tests
// run "open" without that flag first, so the refusal is the default they record.
import * as jose6 from "jose";
import * as jose5 from "jose5";

const LIBS = { jose6, jose5 };

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

const describe = (error) => `${error.code ?? error.name}: ${error.message}`;

async function seal(request) {
  const payload = Buffer.from(request.payload_b64, "base64");
  const out = [];
  for (const cell of request.cells) {
    const lib = LIBS[cell.lib];
    try {
      const signKey = await lib.importJWK(request.sign_jwk, cell.jws_alg);
      const jws = await new lib.CompactSign(payload)
        .setProtectedHeader({ alg: cell.jws_alg })
        .sign(signKey);
      const header = { alg: cell.alg, enc: cell.enc };
      if (cell.zip) header.zip = "DEF";
      const encKey = await lib.importJWK(cell.enc_jwk, cell.alg);
      const jwe = await new lib.CompactEncrypt(new TextEncoder().encode(jws))
        .setProtectedHeader(header)
        .encrypt(encKey);
      out.push({ token: jwe });
    } catch (error) {
      out.push({ error: describe(error) });
    }
  }
  return out;
}

async function open(request) {
  const out = [];
  for (const cell of request.cells) {
    const lib = LIBS[cell.lib];
    try {
      const decKey = await lib.importJWK(cell.dec_jwk, cell.alg);
      const { plaintext, protectedHeader } = await lib.compactDecrypt(cell.token, decKey);
      const verifyKey = await lib.importJWK(request.verify_jwk, cell.jws_alg);
      const verified = await lib.compactVerify(new TextDecoder().decode(plaintext), verifyKey);
      out.push({
        payload_b64: Buffer.from(verified.payload).toString("base64"),
        jwe_header: protectedHeader,
        jws_header: verified.protectedHeader,
      });
    } catch (error) {
      out.push({ error: describe(error) });
    }
  }
  return out;
}

const mode = process.argv[2];
const request = await readStdin();
const result = mode === "seal" ? await seal(request) : await open(request);
process.stdout.write(`\n${JSON.stringify(result)}\n`); // last line: a revert flag warns on stdout
