/* possim.js: the web wallet's pure functions (no DOM): payment codes and request signatures.
 *
 * Byte for byte the same as protocol/payment_code.py (mint_code) and protocol/signing.py
 * (sign_request); tests/web checks both against vectors made by the Python code.
 *
 * Keys: the device secret is imported once as a non-extractable WebCrypto HMAC key; from it the two
 * derived keys (HMAC(secret, label) for codes and for requests, as in the Python code) are imported
 * non-extractable too, so page scripts can use them but never read them back. WebCrypto exists only
 * in a secure context (https, or http://localhost); a phone on plain http://192.168.x.y gets the
 * same results from the small SHA-256 below, with the keys held as bytes instead.
 */
(function (root) {
  "use strict";

  var ISSUER_PREFIX = "38";
  var DEVICE_DIGITS = 7;
  var MAX_DEVICE_NUMBER = 9999999;
  var COUNTERS_PER_SECOND = 10;
  var MIN_SECRET_BYTES = 16;
  var SHORT_TIME_MOD = 10000;
  var TTL_SECONDS = 60;
  var CODE_KEY_LABEL = "possim/payment-code-key/v1";
  var REQUEST_KEY_LABEL = "possim/request-signing-key/v1";
  var DAMM = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2], [7, 0, 9, 2, 1, 5, 4, 8, 6, 3], [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6], [6, 1, 2, 3, 0, 4, 5, 9, 7, 8], [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4], [8, 9, 4, 5, 3, 6, 2, 0, 1, 7], [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
  ];

  var forceFallback = false;
  var encoder = new TextEncoder();

  function subtle() {
    if (forceFallback) return null;
    var c = root.crypto;
    return c && c.subtle && root.isSecureContext !== false ? c.subtle : null;
  }

  function toBytes(data) {
    if (typeof data === "string") return encoder.encode(data);
    if (data instanceof Uint8Array) return data;
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (Array.isArray(data)) return Uint8Array.from(data);
    if (data === undefined || data === null) return new Uint8Array(0);
    throw new TypeError("expected bytes");
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }

  function pad(number, width) {
    var text = String(number);
    while (text.length < width) text = "0" + text;
    return text;
  }

  /* ---- SHA-256 and HMAC in plain JavaScript (FIPS 180-4, RFC 2104): the insecure-context path ---- */
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function sha256Sync(message) {
    var length = message.length;
    var padded = new Uint8Array(((length + 9 + 63) >> 6) << 6);
    padded.set(message);
    padded[length] = 0x80;
    var bits = length * 8;
    var view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(padded.length - 4, bits >>> 0);
    var h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    var w = new Uint32Array(64);
    for (var offset = 0; offset < padded.length; offset += 64) {
      for (var t = 0; t < 16; t++) w[t] = view.getUint32(offset + 4 * t);
      for (t = 16; t < 64; t++) {
        var a15 = w[t - 15], a2 = w[t - 2];
        var s0 = ((a15 >>> 7) | (a15 << 25)) ^ ((a15 >>> 18) | (a15 << 14)) ^ (a15 >>> 3);
        var s1 = ((a2 >>> 17) | (a2 << 15)) ^ ((a2 >>> 19) | (a2 << 13)) ^ (a2 >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      var A = h[0], B = h[1], C = h[2], D = h[3], E = h[4], F = h[5], G = h[6], H = h[7];
      for (t = 0; t < 64; t++) {
        var S1 = ((E >>> 6) | (E << 26)) ^ ((E >>> 11) | (E << 21)) ^ ((E >>> 25) | (E << 7));
        var t1 = (H + S1 + ((E & F) ^ (~E & G)) + K[t] + w[t]) | 0;
        var S0 = ((A >>> 2) | (A << 30)) ^ ((A >>> 13) | (A << 19)) ^ ((A >>> 22) | (A << 10));
        var t2 = (S0 + ((A & B) ^ (A & C) ^ (B & C))) | 0;
        H = G; G = F; F = E; E = (D + t1) | 0; D = C; C = B; B = A; A = (t1 + t2) | 0;
      }
      h[0] += A; h[1] += B; h[2] += C; h[3] += D; h[4] += E; h[5] += F; h[6] += G; h[7] += H;
    }
    var out = new Uint8Array(32);
    var outView = new DataView(out.buffer);
    for (var i = 0; i < 8; i++) outView.setUint32(4 * i, h[i]);
    return out;
  }

  function hmacSync(key, message) {
    if (key.length > 64) key = sha256Sync(key);
    var inner = new Uint8Array(64 + message.length);
    var outer = new Uint8Array(64 + 32);
    for (var i = 0; i < 64; i++) {
      var k = i < key.length ? key[i] : 0;
      inner[i] = k ^ 0x36;
      outer[i] = k ^ 0x5c;
    }
    inner.set(message, 64);
    outer.set(sha256Sync(inner), 64);
    return sha256Sync(outer);
  }

  /* ---- HMAC over either kind of key ---- */
  function importHmacKey(raw) {
    var s = subtle();
    if (!s) return Promise.resolve({ raw: Uint8Array.from(raw) });
    return s
      .importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (key) { return { crypto: key }; });
  }

  function hmac(key, message) {
    if (key.crypto) {
      return subtle().sign("HMAC", key.crypto, message).then(function (sig) { return new Uint8Array(sig); });
    }
    return Promise.resolve(hmacSync(key.raw, message));
  }

  function sha256(message) {
    var s = subtle();
    if (!s) return Promise.resolve(sha256Sync(message));
    return s.digest("SHA-256", message).then(function (d) { return new Uint8Array(d); });
  }

  /** The code key and the request key of a device secret (as protocol's _code_key / request_key). */
  function deriveKeys(secret) {
    var raw = toBytes(secret);
    if (raw.length < MIN_SECRET_BYTES) return Promise.reject(new RangeError("device secret must be at least 128 bits"));
    return importHmacKey(raw).then(function (secretKey) {
      return Promise.all([
        hmac(secretKey, encoder.encode(CODE_KEY_LABEL)).then(importHmacKey),
        hmac(secretKey, encoder.encode(REQUEST_KEY_LABEL)).then(importHmacKey),
      ]);
    }).then(function (keys) { return { codeKey: keys[0], requestKey: keys[1] }; });
  }

  /* ---- payment codes ---- */
  function dammDigit(digits) {
    var interim = 0;
    for (var i = 0; i < digits.length; i++) {
      var d = digits.charCodeAt(i) - 48;
      if (d < 0 || d > 9) throw new RangeError("digits only");
      interim = DAMM[interim][d];
    }
    return String(interim);
  }

  function bigFrom(bytes, start, end) {
    var value = 0n;
    for (var i = start; i < end; i++) value = (value << 8n) | BigInt(bytes[i]);
    return value;
  }

  function mintWithKeys(keys, deviceId, unixSeconds, counter) {
    if (!Number.isInteger(deviceId) || deviceId < 1 || deviceId > MAX_DEVICE_NUMBER) {
      return Promise.reject(new RangeError("device number must be 1.." + MAX_DEVICE_NUMBER));
    }
    if (!Number.isInteger(counter) || counter < 0 || counter >= COUNTERS_PER_SECOND) {
      return Promise.reject(new RangeError("counter must be 0..9"));
    }
    if (!Number.isInteger(unixSeconds) || unixSeconds < 0) return Promise.reject(new RangeError("bad time"));
    var device = pad(deviceId, DEVICE_DIGITS);
    var message = "possim-code-v1|" + device + "|" + unixSeconds + "|" + counter;
    return hmac(keys.codeKey, encoder.encode(message)).then(function (digest) {
      var shortMac = pad((bigFrom(digest, 0, 8) % 10000000n).toString(), 7);
      var longMac = pad((bigFrom(digest, 8, 24) % 10000000000000000000n).toString(), 19);
      var numeric = ISSUER_PREFIX + device + pad(unixSeconds % SHORT_TIME_MOD, 4) + counter + shortMac;
      var qr = ISSUER_PREFIX + device + pad(unixSeconds, 10) + counter + longMac;
      return {
        qr: qr + dammDigit(qr),
        numeric: numeric + dammDigit(numeric),
        deviceId: deviceId,
        mintedAt: unixSeconds,
        counter: counter,
        expiresAt: unixSeconds + TTL_SECONDS,
      };
    });
  }

  /** protocol.mint_code: resolves to {qr, numeric, deviceId, mintedAt, counter, expiresAt}. */
  function mintCode(secretBytes, deviceId, unixSeconds, counter) {
    return deriveKeys(secretBytes).then(function (keys) {
      return mintWithKeys(keys, deviceId, unixSeconds, counter);
    });
  }

  /* ---- request signatures ---- */
  function randomNonce() {
    var bytes = new Uint8Array(16);
    root.crypto.getRandomValues(bytes);
    return hex(bytes);
  }

  function signWithKeys(keys, keyId, method, path, body, unixSeconds, nonce) {
    var n = nonce || randomNonce();
    return sha256(toBytes(body)).then(function (bodyHash) {
      var canonical = ["possim-req-v1", keyId, method.toUpperCase(), path, String(unixSeconds), n, hex(bodyHash)];
      return hmac(keys.requestKey, encoder.encode(canonical.join("\n")));
    }).then(function (signature) {
      return {
        "X-Possim-Key-Id": keyId,
        "X-Possim-Timestamp": String(unixSeconds),
        "X-Possim-Nonce": n,
        "X-Possim-Signature": "v1=" + hex(signature),
      };
    });
  }

  /** protocol.sign_request(...).as_dict(): body is a string (UTF-8) or bytes; nonce optional. */
  function signRequest(secretBytes, keyId, method, path, body, unixSeconds, nonce) {
    return deriveKeys(secretBytes).then(function (keys) {
      return signWithKeys(keys, keyId, method, path, body, unixSeconds, nonce);
    });
  }

  /* ---- the per-second counter of wallet_app/minter.py ---- */
  function Minter(keys, deviceId) {
    this.keys = keys;
    this.deviceId = deviceId;
    this.lastSecond = -1;
    this.nextCounter = 0;
  }

  /** Resolves to a new code, or to null when ten were already minted in this second. */
  Minter.prototype.mint = function (unixSeconds) {
    if (unixSeconds !== this.lastSecond) {
      this.lastSecond = unixSeconds;
      this.nextCounter = 0;
    }
    if (this.nextCounter >= COUNTERS_PER_SECOND) return Promise.resolve(null);
    var counter = this.nextCounter++;
    return mintWithKeys(this.keys, this.deviceId, unixSeconds, counter);
  };

  function groupDigits(text, size) {
    var n = size || 4;
    var parts = [];
    for (var i = 0; i < text.length; i += n) parts.push(text.slice(i, i + n));
    return parts.join(" ");
  }

  function decodeBase64Url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var binary = root.atob(b64);
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  root.possim = {
    TTL_SECONDS: TTL_SECONDS,
    COUNTERS_PER_SECOND: COUNTERS_PER_SECOND,
    dammDigit: dammDigit,
    mintCode: mintCode,
    signRequest: signRequest,
    deriveKeys: deriveKeys,
    mintWithKeys: mintWithKeys,
    signWithKeys: signWithKeys,
    Minter: Minter,
    groupDigits: groupDigits,
    decodeBase64Url: decodeBase64Url,
    sha256Hex: function (data) { return sha256(toBytes(data)).then(hex); },
    usingWebCrypto: function () { return subtle() !== null; },
    /** Tests only: run the plain-JavaScript path even where WebCrypto exists. */
    setForceFallback: function (on) { forceFallback = Boolean(on); },
  };
})(typeof globalThis !== "undefined" ? globalThis : window);
