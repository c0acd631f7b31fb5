/* app.js: the web wallet's screens. The crypto lives in possim.js; this file only draws and talks.
 *
 * The enrolled device is kept in localStorage ("possim.wallet"); on load its secret becomes
 * non-extractable WebCrypto keys (possim.deriveKeys) and the page works from those. Codes are minted
 * here, offline; every call to the core goes to /v1/* on this origin (web_server.py proxies it).
 */
(function () {
  "use strict";

  var STORAGE_KEY = "possim.wallet";
  var POLL_MS = 3000;
  var WALLET_EVERY_POLLS = 5;
  var REFRESH_AFTER_S = 30;
  var MAX_QR_VERSION = 3;
  var QR_QUIET = 4;
  var MIN_QR_PX = 6;
  var CODE128_QUIET = 10;
  var RING_C = 2 * Math.PI * 18;

  var P = window.possim;
  var state = { wallet: null, keys: null, minter: null, code: null, pollTimer: null, tickTimer: null, polls: 0, asking: null, answered: {} };

  function $(id) { return document.getElementById(id); }
  function nowSeconds() { return Math.floor(Date.now() / 1000); }
  function yen(amount) { return "¥" + Number(amount).toLocaleString("ja-JP"); }
  function show(id, on) { $(id).hidden = !on; }

  function setOffline(offline) { show("offline-badge", offline); }

  /* ---- talking to the core (through this origin) ---- */
  function call(method, path, body, signed) {
    var text = body === undefined ? "" : JSON.stringify(body);
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    var ready = signed
      ? P.signWithKeys(state.keys, state.wallet.key_id, method, path, text, nowSeconds())
      : Promise.resolve({});
    return ready.then(function (sig) {
      Object.assign(headers, sig);
      return fetch(path, { method: method, headers: headers, body: method === "GET" ? undefined : text, cache: "no-store", credentials: "omit" });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        var problem = data && data.error;
        setOffline(response.status === 503 && problem && problem.code === "service_unavailable");
        if (!response.ok) {
          var error = new Error((problem && problem.message) || "HTTP " + response.status);
          error.code = problem && problem.code;
          error.status = response.status;
          // 429: the seconds to wait, in the body and in Retry-After
          error.retryAfter = Number((problem && problem.retry_after) || response.headers.get("Retry-After")) || 0;
          throw error;
        }
        return data;
      });
    }, function (failure) {
      setOffline(true);
      var error = new Error("No connection to the wallet server.");
      error.code = "network";
      error.cause = failure;
      throw error;
    });
  }

  function signedCall(method, path, body) {
    return call(method, path, body, true).catch(function (error) {
      // The core answers a revoked (or unknown) device's signature as invalid: its codes fail too.
      if (error.code === "signature_invalid" || error.code === "device_revoked" || error.code === "device_unknown") {
        forget("This browser was signed out (the device was revoked). Sign in again.");
      } else if (error.code === "timestamp_stale") {
        $("mint-note").textContent = "This phone's clock is off; set it automatically or codes will fail.";
      }
      throw error;
    });
  }

  /* ---- screens ---- */
  function showScreen(name) {
    ["signin", "signup", "reset", "pay", "wallet"].forEach(function (screen) { show(screen + "-screen", screen === name); });
    show("tabs", name === "pay" || name === "wallet");
    $("tab-pay").classList.toggle("active", name === "pay");
    $("tab-wallet").classList.toggle("active", name === "wallet");
    if (name === "wallet") refreshWallet();
  }

  function loadWallet() {
    try {
      var stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
      return stored && stored.device_secret && stored.device_id ? stored : null;
    } catch (e) {
      return null;
    }
  }

  function start(wallet) {
    state.wallet = wallet;
    return P.deriveKeys(P.decodeBase64Url(wallet.device_secret)).then(function (keys) {
      state.keys = keys;
      state.minter = new P.Minter(keys, Number(wallet.device_id));
      $("wallet-name").textContent = wallet.display_name || wallet.email;
      showScreen("pay");
      newCode();
      clearInterval(state.tickTimer);
      state.tickTimer = setInterval(tick, 250);
      poll();
    });
  }

  /** Back to the sign-in screen, this browser's device forgotten; `message` as an error, or as good news. */
  function forget(message, good) {
    localStorage.removeItem(STORAGE_KEY);
    clearInterval(state.tickTimer);
    clearTimeout(state.pollTimer);
    state.wallet = state.keys = state.minter = state.code = null;
    $("wallet-name").textContent = "";
    show("confirm-dialog", false);
    showScreen("signin");
    $("signin-password").value = $("signin-otp").value = "";
    $("signin-error").textContent = good ? "" : message || "";
    $("signin-note").textContent = good ? message : "";
  }

  /* ---- the code ---- */
  function newCode() {
    if (!state.minter) return;
    var second = nowSeconds();
    state.minter.mint(second).then(function (code) {
      if (code === null) {
        $("mint-note").textContent = "Ten codes this second already; the next one comes in a moment.";
        setTimeout(newCode, 1000 - (Date.now() % 1000) + 5);
        return;
      }
      $("mint-note").textContent = "";
      state.code = code;
      drawQr($("qr-canvas"), code.qr, MAX_QR_VERSION);
      drawCode128($("barcode-canvas"), code.numeric);
      $("code-digits").textContent = P.groupDigits(code.numeric, 4);
      $("mint-counter").textContent = "code " + (code.counter + 1) + " of " + P.COUNTERS_PER_SECOND + " this second";
      tick();
    });
  }

  function tick() {
    var code = state.code;
    if (!code) return;
    var now = Date.now() / 1000;
    var left = Math.max(0, code.expiresAt - now);
    $("ring-progress").setAttribute("stroke-dasharray", String(RING_C));
    $("ring-progress").setAttribute("stroke-dashoffset", String(RING_C * (1 - left / P.TTL_SECONDS)));
    $("countdown-text").textContent = Math.ceil(left) + " s";
    if (now - code.mintedAt >= REFRESH_AFTER_S && !$("pay-screen").hidden) newCode();
  }

  /** The QR at ECC level M, a whole number of device pixels a module (at least 6), 4 modules of quiet zone. */
  function drawQr(canvas, text, maxVersion) {
    var qr = qrcode(0, "M");
    qr.addData(text, /^[0-9]+$/.test(text) ? "Numeric" : "Byte");
    qr.make();
    var count = qr.getModuleCount();
    if (maxVersion && (count - 17) / 4 > maxVersion) throw new Error("QR version above " + maxVersion);
    var side = count + 2 * QR_QUIET;
    var dpr = window.devicePixelRatio || 1;
    var target = Math.min(260, (canvas.parentElement.clientWidth || 300) - 32) * dpr;
    var px = Math.max(MIN_QR_PX, Math.floor(target / side));
    canvas.width = canvas.height = side * px;
    canvas.style.width = canvas.style.height = side * px / dpr + "px";
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#000";
    for (var row = 0; row < count; row++) {
      for (var col = 0; col < count; col++) {
        if (qr.isDark(row, col)) ctx.fillRect((col + QR_QUIET) * px, (row + QR_QUIET) * px, px, px);
      }
    }
  }

  /** Code 128 (JsBarcode; all digits, so set C throughout), 10 modules of quiet zone each side. */
  function drawCode128(canvas, text) {
    var dpr = window.devicePixelRatio || 1;
    var modules = 11 * (2 + Math.ceil(text.length / 2)) + 13 + 2 * CODE128_QUIET;
    var available = Math.min(360, (canvas.parentElement.clientWidth || 300) - 16) * dpr;
    var module = Math.max(1, Math.floor(available / modules));
    JsBarcode(canvas, text, {
      format: "CODE128", width: module, height: Math.round(64 * dpr), margin: CODE128_QUIET * module,
      displayValue: false, background: "#ffffff", lineColor: "#000000",
    });
    canvas.style.width = canvas.width / dpr + "px";
    canvas.style.height = canvas.height / dpr + "px";
  }

  /* ---- balance, history, confirmations ---- */
  var KIND_LABEL = { topup: "Top-up", payment: "Payment", refund: "Refund" };

  function refreshWallet() {
    if (!state.keys) return Promise.resolve();
    return Promise.all([signedCall("GET", "/v1/wallet"), signedCall("GET", "/v1/wallet/history")]).then(function (answers) {
      var wallet = answers[0];
      $("balance").textContent = yen(wallet.balance);
      if (wallet.display_name) $("wallet-name").textContent = wallet.display_name;
      renderHistory(answers[1].data || []);
    }, function () { /* offline: keep what is shown */ });
  }

  function renderHistory(items) {
    var list = $("history");
    list.textContent = "";
    show("history-empty", items.length === 0);
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "entry " + item.kind;
      var left = document.createElement("span");
      var what = document.createElement("strong");
      what.textContent = KIND_LABEL[item.kind] || item.kind;
      var where = document.createElement("small");
      var when = item.created ? new Date(item.created).toLocaleString() : "";
      where.textContent = [item.store || item.source || "", item.status, when].filter(Boolean).join(" · ");
      left.append(what, where);
      var amount = document.createElement("span");
      amount.className = "amount";
      amount.textContent = (item.kind === "payment" ? "−" : "+") + yen(item.amount);
      li.append(left, amount);
      list.append(li);
    });
  }

  function poll() {
    clearTimeout(state.pollTimer);
    if (!state.keys) return;
    state.polls += 1;
    var work = signedCall("GET", "/v1/wallet/awaiting").then(function (answer) {
      var waiting = (answer.data || []).filter(function (p) { return !state.answered[p.id]; });
      if (waiting.length && !state.asking) ask(waiting[0]);
      if (!waiting.length && state.asking) closeAsk();
    }, function () {});
    if (state.polls % WALLET_EVERY_POLLS === 1 || !$("wallet-screen").hidden) work = work.then(refreshWallet);
    work.then(function () { if (state.keys) state.pollTimer = setTimeout(poll, POLL_MS); });
  }

  function ask(payment) {
    state.asking = payment;
    $("confirm-amount").textContent = yen(payment.amount);
    $("confirm-store").textContent = (payment.store || "") + (payment.order_id ? " · order " + payment.order_id : "");
    $("confirm-error").textContent = "";
    show("confirm-dialog", true);
  }

  function closeAsk() {
    state.asking = null;
    show("confirm-dialog", false);
  }

  function decide(approve) {
    var payment = state.asking;
    if (!payment) return;
    $("confirm-approve").disabled = $("confirm-deny").disabled = true;
    var path = "/v1/wallet/payments/" + encodeURIComponent(payment.id) + "/confirm";
    signedCall("POST", path, { decision: approve ? "approve" : "deny" }).then(function (result) {
      state.answered[payment.id] = result.status;
      closeAsk();
      newCode();  // the code on screen was used up by this payment
      refreshWallet();
    }, function (error) {
      if (error.code === "payment_not_pending") {
        state.answered[payment.id] = "closed";
        closeAsk();
      } else {
        $("confirm-error").textContent = error.message;
      }
    }).then(function () { $("confirm-approve").disabled = $("confirm-deny").disabled = false; });
  }

  /* ---- forms ---- */
  var holds = {};

  function inWords(seconds) {
    return seconds >= 120 ? Math.ceil(seconds / 60) + " min" : seconds + " s";
  }

  /** Keep `button` disabled for the core's Retry-After, the wait counting down on its label. */
  function holdOff(button, seconds) {
    var label = button.dataset.label || (button.dataset.label = button.textContent);
    var until = Date.now() + seconds * 1000;
    clearInterval(holds[button.id]);
    function step() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        button.disabled = true;
        button.textContent = label + " (" + inWords(left) + ")";
        return;
      }
      clearInterval(holds[button.id]);
      delete holds[button.id];
      button.textContent = label;
      button.disabled = false;
    }
    holds[button.id] = setInterval(step, 1000);
    step();
  }

  /**
   * One form's call to the core: `button` disabled while it runs; a failure is told in `errorId`, in
   * the page's words for the codes in `words` and else in the core's own message; a throttled address
   * (429 rate_limited) is told how long to wait and the button stays disabled until then.
   */
  function submit(button, errorId, work, words) {
    $(errorId).textContent = "";
    button.disabled = true;
    return work().catch(function (error) {
      var text = (words && words[error.code]) || error.message;
      if (error.code === "rate_limited" && error.retryAfter > 0) {
        text += " Try again in " + inWords(error.retryAfter) + ".";
        holdOff(button, error.retryAfter);
      }
      $(errorId).textContent = text;
    }).then(function () {
      if (!holds[button.id]) button.disabled = false;
    });
  }

  function onSignIn(event) {
    event.preventDefault();
    $("signin-note").textContent = "";
    var email = $("signin-email").value.trim();
    var body = {
      email: email, password: $("signin-password").value,
      otp: $("signin-otp").value.trim(), device_name: $("signin-device").value.trim() || "web browser",
    };
    submit($("signin-submit"), "signin-error", function () {
      return call("POST", "/v1/devices", body, false).then(function (enrolled) {
        // Only the device is kept: this page signs its own requests and uses no session, so the
        // answer's access and refresh tokens are dropped here, never stored.
        var wallet = {
          device_id: Number(enrolled.device_id), key_id: enrolled.key_id, device_secret: enrolled.device_secret,
          account_id: enrolled.account_id, email: email, core: location.origin + "/v1", enrolled_at: nowSeconds(),
        };
        localStorage.setItem(STORAGE_KEY, JSON.stringify(wallet));
        $("signin-password").value = $("signin-otp").value = "";
        return start(wallet);
      });
    }, {
      credentials_invalid: "E-mail, password or code is wrong (or the e-mail is not verified yet). A recovery code works only once.",
    });
  }

  function signupEmail() { return $("signup-email").value.trim(); }

  /** The sign-up screen back at its first step (the second-factor kit, if shown, gone from the page). */
  function resetSignUp() {
    $("signup-form").hidden = false;
    show("signup-check", false);
    show("signup-done", false);
    show("signup-back", true);
    $("recovery-codes").textContent = $("totp-secret").textContent = "";
    $("totp-qr").width = $("totp-qr").height = 0;  // the QR holds the key too
    $("verify-code").value = $("signup-password").value = "";
    ["signup-error", "verify-note", "verify-error"].forEach(function (id) { $(id).textContent = ""; });
  }

  function onSignUp(event) {
    event.preventDefault();
    var body = {
      email: signupEmail(), phone: $("signup-phone").value.trim(),
      password: $("signup-password").value, display_name: $("signup-name").value.trim() || null,
    };
    submit($("signup-submit"), "signup-error", function () {
      return call("POST", "/v1/accounts", body, false).then(function (answer) {
        // The same answer whether or not the address already has an account: the e-mail says which.
        $("signup-password").value = "";
        $("signup-form").hidden = true;
        $("signup-check-message").textContent = answer.message;
        show("signup-check", true);
        $("verify-code").focus();
      });
    });
  }

  function onVerify(event) {
    event.preventDefault();
    $("verify-note").textContent = "";
    var body = { email: signupEmail(), code: $("verify-code").value.trim() };
    submit($("verify-submit"), "verify-error", function () {
      return call("POST", "/v1/accounts/verify", body, false).then(showKit);
    }, {
      credentials_invalid: "That code is wrong or has expired. Use the newest e-mail, or send a new code.",
    });
  }

  /** The second factor, shown this once: the authenticator key (QR and text) and the ten recovery codes. */
  function showKit(kit) {
    show("signup-check", false);
    show("signup-back", false);  // leaving now would lose the codes: the only way on is "I have saved them"
    show("signup-done", true);
    $("totp-secret").textContent = P.groupDigits(kit.totp_secret, 4);
    drawQr($("totp-qr"), kit.totp_uri, 0);
    var list = $("recovery-codes");
    list.textContent = "";
    kit.recovery_codes.forEach(function (code) {
      var item = document.createElement("li");
      item.textContent = code;
      list.appendChild(item);
    });
    window.scrollTo(0, 0);
  }

  function onResend() {
    $("verify-note").textContent = "";
    submit($("verify-resend"), "verify-error", function () {
      return call("POST", "/v1/accounts/verify/resend", { email: signupEmail() }, false).then(function () {
        // The core answers with the sign-up's "check your e-mail" again: say what changed instead.
        $("verify-note").textContent = "A new e-mail is on its way: use the code in the newest one.";
      });
    });
  }

  function onSignUpDone() {
    $("signin-email").value = signupEmail();
    resetSignUp();
    showScreen("signin");
    $("signin-note").textContent = "E-mail verified. Sign in with your password and authenticator code.";
    $("signin-error").textContent = "";
  }

  function openReset() {
    $("reset-email").value = $("signin-email").value.trim();
    $("reset-token").value = $("reset-password").value = "";
    ["reset-request-note", "reset-request-error", "reset-error"].forEach(function (id) { $(id).textContent = ""; });
    show("reset-confirm-form", false);
    showScreen("reset");
  }

  function onResetRequest(event) {
    event.preventDefault();
    $("reset-request-note").textContent = "";
    var body = { email: $("reset-email").value.trim() };
    submit($("reset-request-submit"), "reset-request-error", function () {
      return call("POST", "/v1/password-reset", body, false).then(function (answer) {
        // The same answer for every address; the code goes only to an account's own address.
        $("reset-request-note").textContent = answer.message;
        show("reset-confirm-form", true);
        $("reset-token").focus();
      });
    });
  }

  function onResetConfirm(event) {
    event.preventDefault();
    var body = { token: $("reset-token").value.trim(), new_password: $("reset-password").value };
    submit($("reset-confirm-submit"), "reset-error", function () {
      return call("POST", "/v1/password-reset/confirm", body, false).then(function (done) {
        $("reset-password").value = $("reset-token").value = "";
        forget("Password changed and every device of the account signed out. Sign in with the new password.", true);
        $("signin-email").value = done.email;
      });
    }, {
      credentials_invalid: "That reset code is wrong, used or expired. Send yourself a new one.",
    });
  }

  function onSignOut() {
    var id = state.wallet && state.wallet.device_id;
    var done = function () { forget("Signed out.", true); };
    if (!id) return done();
    signedCall("POST", "/v1/wallet/devices/" + id + "/revoke", {}).then(done, done);
  }

  function init() {
    $("signin-form").addEventListener("submit", onSignIn);
    $("signup-form").addEventListener("submit", onSignUp);
    $("verify-form").addEventListener("submit", onVerify);
    $("verify-resend").addEventListener("click", onResend);
    $("signup-restart").addEventListener("click", function () { resetSignUp(); $("signup-email").focus(); });
    $("signup-continue").addEventListener("click", onSignUpDone);
    $("reset-request-form").addEventListener("submit", onResetRequest);
    $("reset-confirm-form").addEventListener("submit", onResetConfirm);
    $("to-reset").addEventListener("click", openReset);
    $("reset-to-signin").addEventListener("click", function () { showScreen("signin"); });
    $("to-signup").addEventListener("click", function () { showScreen("signup"); });
    $("to-signin").addEventListener("click", function () { showScreen("signin"); });
    $("code-area").addEventListener("click", newCode);
    $("code-area").addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") newCode(); });
    $("tab-pay").addEventListener("click", function () { showScreen("pay"); });
    $("tab-wallet").addEventListener("click", function () { showScreen("wallet"); });
    $("refresh-wallet").addEventListener("click", refreshWallet);
    $("confirm-approve").addEventListener("click", function () { decide(true); });
    $("confirm-deny").addEventListener("click", function () { decide(false); });
    $("sign-out").addEventListener("click", onSignOut);
    window.addEventListener("offline", function () { setOffline(true); });
    $("signin-device").value = /iPhone|Android/.test(navigator.userAgent) ? "my phone" : "web browser";
    var wallet = loadWallet();
    if (wallet) {
      start(wallet).catch(function () { forget("The stored device could not be loaded; sign in again."); });
    } else {
      showScreen("signin");
    }
  }

  init();
})();
