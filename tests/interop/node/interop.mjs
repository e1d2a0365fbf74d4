// panva/jose on the other side of pushprov's JWE interop tests.
//
//   node interop.mjs seal < request.json   -> [{"token": "..."} ...]
//   node --security-revert=CVE-2023-46809 interop.mjs open < request.json
//                                           -> [{"payload_b64": "..."} | {"error": "..."} ...]
//
// One process per direction handles every cell. jose 6 (current) serves RSA-OAEP-256; it has no
// RSA1_5 (WebCrypto lacks RSAES-PKCS1-v1_5), and jose 5 has RSA1_5 but no "zip", so RSA1_5
// cells use jose 4.15, the last line with both. Node 20 refuses PKCS#1 v1.5 private decryption
// (Marvin, CVE-2023-46809) unless that one revert flag is given; sealing needs no flag.
// Recipient keys come per cell: pushprov uses RSA1_5 only with a key pinned to it.
import * as jose6 from "jose";
import * as jose4 from "jose4";

const libFor = (alg) => (alg === "RSA1_5" ? jose4 : jose6);

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function seal(request) {
  const payload = Buffer.from(request.payload_b64, "base64");
  const out = [];
  for (const cell of request.cells) {
    const lib = libFor(cell.alg);
    const signKey = await lib.importJWK(request.sign_jwk, "RS256");
    const jws = await new lib.CompactSign(payload)
      .setProtectedHeader({ alg: "RS256", kid: request.sign_jwk.kid })
      .sign(signKey);
    const header = { alg: cell.alg, enc: cell.enc, kid: cell.enc_jwk.kid, cty: "JWT" };
    if (cell.zip) header.zip = "DEF";
    const encKey = await lib.importJWK(cell.enc_jwk, cell.alg);
    const jwe = await new lib.CompactEncrypt(new TextEncoder().encode(jws))
      .setProtectedHeader(header)
      .encrypt(encKey);
    out.push({ token: jwe });
  }
  return out;
}

async function open(request) {
  const out = [];
  for (const cell of request.cells) {
    const lib = libFor(cell.alg);
    try {
      const decKey = await lib.importJWK(cell.dec_jwk, cell.alg);
      const { plaintext, protectedHeader } = await lib.compactDecrypt(cell.token, decKey, {
        keyManagementAlgorithms: [cell.alg],
        contentEncryptionAlgorithms: [cell.enc],
      });
      if (protectedHeader.cty !== "JWT") throw new Error("no nested JWT");
      const verifyKey = await lib.importJWK(request.verify_jwk, cell.jws_alg);
      const { payload } = await lib.compactVerify(new TextDecoder().decode(plaintext), verifyKey, {
        algorithms: [cell.jws_alg],
      });
      out.push({ payload_b64: Buffer.from(payload).toString("base64") });
    } catch (error) {
      out.push({ error: `${error.code ?? error.name}: ${error.message}` });
    }
  }
  return out;
}

const mode = process.argv[2];
const request = await readStdin();
const result = mode === "seal" ? await seal(request) : await open(request);
process.stdout.write(`\n${JSON.stringify(result)}\n`); // last line: the revert flag warns on stdout
