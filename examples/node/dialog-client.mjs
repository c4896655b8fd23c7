// A client for `dialog serve`, for Node 20+ (built-in fetch; no dependencies).
//
//   import { handle, propose, history } from "./dialog-client.mjs";
//   const reply = await handle(conversationId, userText, { channel: "voice", messageId });
//
// The module-level functions use DIALOG_URL (default http://127.0.0.1:8000) and DIALOG_API_KEY;
// createClient({ baseUrl, apiKey }) makes a client of your own (one per API key, that is per
// tenant: the key names the tenant on the dialog side).
//
// Every POST carries an Idempotency-Key: the messageId you pass (your chat platform's id for the
// user's message, so a message your own frontend sends twice is applied once), else a random one.
// A 503 (Redis or the calendar unavailable), a timeout or a dropped connection is retried once,
// after Retry-After, with the same key: the server applies a key at most once and answers a
// repeat with the first reply, so a retry never books twice.

import { randomUUID } from "node:crypto";

export class DialogError extends Error {
  /** An error answer of dialog serve: `status`, its stable `code` (see the README), `field` if any. */
  constructor(status, code, message, { field = null, retryAfter = null } = {}) {
    super(message);
    this.name = "DialogError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

export function createClient({
  baseUrl = process.env.DIALOG_URL || "http://127.0.0.1:8000",
  apiKey = process.env.DIALOG_API_KEY,
  timeoutMs = 10_000,
  maxRetryWaitMs = 5_000,
  fetch = globalThis.fetch,
} = {}) {
  if (!apiKey) throw new Error("dialog client: no API key (set DIALOG_API_KEY or pass apiKey)");
  const root = baseUrl.replace(/\/+$/, "");
  const path = (conversationId, tail = "") =>
    `${root}/v1/conversations/${encodeURIComponent(conversationId)}${tail}`;

  async function request(method, url, body, idempotencyKey) {
    const headers = { Authorization: `Bearer ${apiKey}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      } catch (error) {
        // No answer (timeout, connection refused or reset): the request may or may not have
        // been applied. With the same key a retry is safe; without one (GET) it always is.
        if (attempt === 1) continue;
        throw new DialogError(0, "unreachable", `dialog serve did not answer: ${error.message}`);
      }
      if (response.status === 503 && attempt === 1) {
        await sleep(Math.min(retryAfterMs(response), maxRetryWaitMs));
        continue;
      }
      const data = await json(response);
      if (response.ok) return data;
      throw new DialogError(response.status, data?.code ?? "http_error", data?.message ?? response.statusText, {
        field: data?.field ?? null,
        retryAfter: response.headers.get("retry-after"),
      });
    }
  }

  return {
    /** One turn: what the user said. Resolves to the reply ({state, outcome, text, proposal, event, ...}). */
    handle(conversationId, text, { channel = "text", messageId } = {}) {
      return request("POST", path(conversationId, "/messages"), { text, channel }, messageId ?? randomUUID());
    },
    /** Your own NLU decided to schedule: propose `start` (an ISO string with an offset, or a Date). */
    propose(conversationId, { lead, start, channel = "text", messageId } = {}) {
      const when = start instanceof Date ? start.toISOString() : start;
      const body = { lead, start: when, channel };
      return request("POST", path(conversationId, "/proposals"), body, messageId ?? randomUUID());
    },
    /** Every applied turn, oldest first: [{at, version, channel, text, state_from, trigger, state, outcome, event_id}]. */
    async history(conversationId) {
      return (await request("GET", path(conversationId, "/history"))).entries;
    },
    /** The stored conversation, or null when there is none. */
    async conversation(conversationId) {
      try {
        return await request("GET", path(conversationId));
      } catch (error) {
        if (error instanceof DialogError && error.status === 404) return null;
        throw error;
      }
    },
  };
}

async function json(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null; // not dialog's answer (a proxy's error page, say): the status speaks for it
  }
}

function retryAfterMs(response) {
  const seconds = Number(response.headers.get("retry-after"));
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let defaultClient;
const client = () => (defaultClient ??= createClient());

export const handle = (conversationId, text, options) => client().handle(conversationId, text, options);
export const propose = (conversationId, options) => client().propose(conversationId, options);
export const history = (conversationId) => client().history(conversationId);
export const conversation = (conversationId) => client().conversation(conversationId);
