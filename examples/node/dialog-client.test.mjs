// node --test examples/node/: the client's requests, retries and errors, on a stand-in fetch.
// (tests/test_node_client.py also runs example.mjs against a real dialog serve.)

import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient, DialogError } from "./dialog-client.mjs";

const REPLY = { conversation_id: "c 1", state: "done", outcome: "booked", text: "Booked", event: { id: "evt_1" } };

/** A fetch answering from `answers` in turn (a Response, or an Error to throw); it records each call. */
function fakeFetch(...answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, method: init.method, headers: init.headers, body: init.body && JSON.parse(init.body) });
    const answer = answers.shift();
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch, calls };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

const client = (fetch) => createClient({ baseUrl: "http://dialog.test/", apiKey: "k1", fetch });

test("handle posts the words with the key, the channel and the message id as Idempotency-Key", async () => {
  const { fetch, calls } = fakeFetch(json(200, REPLY));
  const reply = await client(fetch).handle("c 1/2", "uh yeah sure", { channel: "voice", messageId: "m-7" });
  assert.deepEqual(reply, REPLY);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, "http://dialog.test/v1/conversations/c%201%2F2/messages");
  assert.equal(calls[0].method, "POST");
  assert.equal(calls[0].headers.Authorization, "Bearer k1");
  assert.equal(calls[0].headers["Idempotency-Key"], "m-7");
  assert.deepEqual(calls[0].body, { text: "uh yeah sure", channel: "voice" });
});

test("a 503 is retried once, after Retry-After, with the same Idempotency-Key", async () => {
  const busy = json(503, { code: "calendar_unavailable", message: "later" }, { "Retry-After": "0" });
  const { fetch, calls } = fakeFetch(busy, json(200, REPLY));
  assert.deepEqual(await client(fetch).handle("c1", "yes"), REPLY);
  assert.equal(calls.length, 2);
  const [first, second] = calls.map((call) => call.headers["Idempotency-Key"]);
  assert.ok(first, "a key is sent even without a messageId");
  assert.equal(second, first);
});

test("a second 503 is the caller's: a DialogError with the code and Retry-After", async () => {
  const busy = () => json(503, { code: "store_unavailable", message: "later" }, { "Retry-After": "0" });
  const { fetch, calls } = fakeFetch(busy(), busy());
  await assert.rejects(client(fetch).handle("c1", "yes", { messageId: "m-1" }), (error) => {
    assert.ok(error instanceof DialogError);
    assert.equal(error.status, 503);
    assert.equal(error.code, "store_unavailable");
    assert.equal(error.retryAfter, "0");
    return true;
  });
  assert.equal(calls.length, 2);
});

test("no answer at all (a dropped connection, a timeout) is retried once with the same key", async () => {
  const { fetch, calls } = fakeFetch(new TypeError("fetch failed"), json(200, REPLY));
  await client(fetch).propose("c1", { lead: "Dana Scully", start: new Date("2026-11-24T10:00:00Z"), messageId: "p-1" });
  assert.equal(calls.length, 2);
  assert.deepEqual(calls.map((c) => c.headers["Idempotency-Key"]), ["p-1", "p-1"]);
  assert.equal(calls[1].url, "http://dialog.test/v1/conversations/c1/proposals");
  assert.deepEqual(calls[1].body, { lead: "Dana Scully", start: "2026-11-24T10:00:00.000Z", channel: "text" });
});

test("other errors are not retried: the code and the field at fault", async () => {
  const invalid = json(422, { code: "invalid_input", message: "a start in the past", field: "start" });
  const { fetch, calls } = fakeFetch(invalid);
  await assert.rejects(client(fetch).propose("c1", { lead: "Dana", start: "2020-01-01T00:00:00Z" }), {
    name: "DialogError",
    status: 422,
    code: "invalid_input",
    field: "start",
  });
  assert.equal(calls.length, 1);
});

test("history is the list of entries; a conversation that does not exist is null", async () => {
  const entries = [{ version: 1, outcome: "proposed" }];
  const missing = json(404, { code: "not_found", message: "no such conversation" });
  const { fetch, calls } = fakeFetch(json(200, { conversation_id: "c1", entries }), missing);
  const dialog = client(fetch);
  assert.deepEqual(await dialog.history("c1"), entries);
  assert.equal(await dialog.conversation("nope"), null);
  assert.equal(calls[0].url, "http://dialog.test/v1/conversations/c1/history");
  assert.equal(calls[0].headers["Idempotency-Key"], undefined);
});

test("a client needs an API key", () => {
  assert.throws(() => createClient({ apiKey: "" }), /no API key/);
});
