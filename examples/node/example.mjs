// The design notes' chat route (backend/routes/ai.js) with its in-memory pendingAction gone.
//
// Before, the route kept the proposal in the process and matched "yes" with a regex:
//
//   let pendingAction = null;   // lost on a restart, unknown to the other containers and channels
//   ...
//   if (pendingAction && /^(yes|yep|confirm|do it|go ahead)$/i.test(txt)) {
//     await createCalendarEvent(pendingAction);   // no idempotency: a retried "yes" books twice
//     pendingAction = null;
//   }
//   ...
//   pendingAction = { type: "schedule_call", tenantId, leadId: lead.id, datetime: nextFree };
//
// After, the conversation lives in dialog (Redis, compare-and-set, exactly-once booking) and the
// route forwards the user's words. With Express:
//
//   app.post("/api/ai/chat", express.json(), aiChat);
//
// Run this file to try it without Express: it serves aiChat with node:http on a free port and
// plays a frontend against it (DIALOG_URL and DIALOG_API_KEY name the dialog serve to use).

import http from "node:http";
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { DialogError, handle, history } from "./dialog-client.mjs";

/** POST /api/ai/chat {conversationId, message, messageId?, channel?}: one turn of the conversation. */
export async function aiChat(req, res) {
  const { conversationId, message, messageId, channel = "text" } = req.body ?? {};
  if (typeof conversationId !== "string" || typeof message !== "string") {
    return res.status(400).json({ error: "conversationId and message are required" });
  }
  try {
    // messageId: the frontend's id for this message, so a message it sends twice is applied once.
    const reply = await handle(conversationId, message, { channel, messageId });
    return res.json({
      type: reply.outcome === "booked" ? "ai_brain" : "ai_chat",
      response: reply.text,
      state: reply.state,
      outcome: reply.outcome,
      proposal: reply.proposal,
      event: reply.event,
    });
  } catch (error) {
    return sendError(res, error);
  }
}

function sendError(res, error) {
  if (!(error instanceof DialogError)) throw error;
  if (error.status === 422 || error.status === 413) {
    return res.status(400).json({ error: error.message, code: error.code });
  }
  if (error.status === 503 || error.status === 0) {
    // Still unavailable after the client's one retry: let the frontend retry the same messageId.
    if (error.retryAfter) res.set("Retry-After", error.retryAfter);
    return res.status(503).json({ error: "the assistant is briefly unavailable; try again", code: error.code });
  }
  if (error.status === 401) {
    console.error("dialog refused our API key: check DIALOG_API_KEY");
  }
  return res.status(502).json({ error: "the assistant failed", code: error.code });
}

/** The few Express methods aiChat uses, on node:http; so this example needs no dependency. */
export function serve(route) {
  return http.createServer(async (request, response) => {
    const chunks = [];
    for await (const chunk of request) chunks.push(chunk);
    const res = {
      status(code) {
        response.statusCode = code;
        return res;
      },
      set(name, value) {
        response.setHeader(name, value);
        return res;
      },
      json(body) {
        response.setHeader("Content-Type", "application/json");
        response.end(JSON.stringify(body));
        return res;
      },
    };
    try {
      const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined;
      await route({ method: request.method, url: request.url, headers: request.headers, body }, res);
    } catch (error) {
      console.error(error);
      if (!response.headersSent) res.status(500).json({ error: "internal error" });
    }
  });
}

async function main() {
  const server = serve(aiChat);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const route = `http://127.0.0.1:${server.address().port}/api/ai/chat`;
  const conversationId = process.env.EXAMPLE_CONVERSATION || `node-example-${randomUUID()}`;

  // The frontend: a stable conversationId per chat session, an id per message.
  async function say(message, messageId, note = "") {
    console.log(`frontend> ${message}${note}`);
    const response = await fetch(route, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ conversationId, message, messageId }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${JSON.stringify(body)}`);
    const event = body.event ? ` event ${body.event.id}` : "";
    console.log(`host> ${body.response}   [${body.state} / ${body.outcome}]${event}`);
    return body;
  }

  try {
    console.log(`conversation ${conversationId}`);
    await say("Schedule a call with Dana Scully tomorrow at 10am", randomUUID());
    const yes = randomUUID();
    const first = await say("yes", yes);
    const before = (await history(conversationId)).length;
    // The frontend's connection dropped before the answer arrived, so it sends the message again.
    const again = await say("yes", yes, "   (the same message again: a retry after a lost answer)");
    const turns = await history(conversationId);
    const bookings = turns.filter((turn) => turn.outcome === "booked").length;
    console.log(`history: ${turns.length} entries, ${bookings} booking(s)`);
    // The retry gets the first answer ("booked", not "already_booked") and adds no history entry.
    const once = again.outcome === "booked" && again.event?.id === first.event?.id && turns.length === before;
    if (first.outcome !== "booked" || !once || bookings !== 1) {
      console.error("expected one booking, and the retry answered with the first reply without being applied");
      process.exitCode = 1;
    } else {
      console.log(`booked once: ${first.event.id}`);
    }
  } finally {
    server.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
