// Bridge-contract adapter (see the suite's README, "Testing a widget driver") around
// matrix-widget-api's ClientWidgetApi, the widget driver of Element Web and Element Call's hosts.
//
// Under test: ClientWidgetApi (matrix-widget-api), which parses the widget's requests, checks
// capabilities and calls the WidgetDriver; and matrix-js-sdk's delayed-event methods, which make
// the homeserver requests. Glue (this file): a stand-in iframe and window that carry postMessage
// traffic over stdin/stdout, and a WidgetDriver whose delayed-event methods make the same js-sdk
// calls as Element Web's StopGapWidgetDriver.
//
// As Element Call's hosts do, the Widget is created with waitForIframeLoad false, so that
// ClientWidgetApi starts the capability negotiation when the widget says content_loaded
// (BRIDGE_INIT_ON_CONTENT_LOAD=true; "false" starts it at once, on the iframe's load). The
// js-sdk client keeps syncing, and the room's new timeline events go to ClientWidgetApi.feedEvent,
// which passes on to the widget those it may receive (as Element Web's StopGapWidget does).

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { format } from "node:util";
import widgetApi from "matrix-widget-api";
import { createClient, ClientEvent, MatrixError, RoomEvent } from "matrix-js-sdk";

const { ClientWidgetApi, Widget, WidgetDriver } = widgetApi;

// stdout carries the widget API only: every library log goes to stderr.
for (const level of ["log", "info", "debug", "warn", "error", "trace"]) {
    console[level] = (...args) => process.stderr.write(`[${level}] ${format(...args)}\n`);
}

function env(name) {
    const value = process.env[name];
    if (!value) {
        process.stderr.write(`widget-bridge-widget-api: ${name} is not set (the harness passes it)\n`);
        process.exit(2);
    }
    return value;
}

function packageVersion(name) {
    const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, "utf8")).version;
}

function writeLine(message) {
    process.stdout.write(`${JSON.stringify(message)}\n`);
}

const roomId = env("BRIDGE_ROOM_ID");
// Absent: the contract before the variable existed (start at once).
const initOnContentLoad = process.env.BRIDGE_INIT_ON_CONTENT_LOAD === "true";
const approvedList = env("BRIDGE_APPROVED_CAPABILITIES");
const approved = approvedList === "*" ? null : new Set(JSON.parse(approvedList));

const client = createClient({
    baseUrl: env("BRIDGE_HOMESERVER_URL"),
    accessToken: env("BRIDGE_ACCESS_TOKEN"),
    userId: env("BRIDGE_USER_ID"),
    deviceId: env("BRIDGE_DEVICE_ID"),
});

/** The delayed-event parts of Element Web's StopGapWidgetDriver, on matrix-js-sdk. */
class ElementLikeDriver extends WidgetDriver {
    async validateCapabilities(requested) {
        return new Set([...requested].filter((cap) => approved === null || approved.has(cap)));
    }

    async sendEvent(eventType, content, stateKey = null, targetRoomId = null) {
        const room = targetRoomId || roomId;
        const r =
            stateKey !== null
                ? await client.sendStateEvent(room, eventType, content, stateKey)
                : await client.sendEvent(room, eventType, content);
        return { roomId: room, eventId: r.event_id };
    }

    async sendDelayedEvent(delay, eventType, content, stateKey = null, targetRoomId = null) {
        const room = targetRoomId || roomId;
        const delayOpts = { delay };
        const r =
            stateKey !== null
                ? await client._unstable_sendDelayedStateEvent(room, delayOpts, eventType, content, stateKey)
                : await client._unstable_sendDelayedEvent(room, delayOpts, null, eventType, content);
        return { roomId: room, delayId: r.delay_id };
    }

    async cancelScheduledDelayedEvent(delayId) {
        await client._unstable_cancelScheduledDelayedEvent(delayId);
    }

    async restartScheduledDelayedEvent(delayId) {
        await client._unstable_restartScheduledDelayedEvent(delayId);
    }

    async sendScheduledDelayedEvent(delayId) {
        await client._unstable_sendScheduledDelayedEvent(delayId);
    }

    processError(error) {
        return error instanceof MatrixError ? { matrix_api_error: error.asWidgetApiErrorData() } : undefined;
    }
}

// The stand-in window: ClientWidgetApi listens for "message" events on the global object.
const messageListeners = new Set();
globalThis.addEventListener = (type, listener) => {
    if (type === "message") messageListeners.add(listener);
};
globalThis.removeEventListener = (type, listener) => {
    if (type === "message") messageListeners.delete(listener);
};

const widget = new Widget({
    id: env("BRIDGE_WIDGET_ID"),
    creatorUserId: env("BRIDGE_USER_ID"),
    type: "m.custom",
    url: "https://widget.invalid/",
    waitForIframeLoad: !initOnContentLoad,
});

// The stand-in iframe: what the driver posts to the widget goes to stdout.
const loadListeners = [];
const iframe = {
    contentWindow: { postMessage: (message) => writeLine(message) },
    addEventListener: (type, listener) => {
        if (type === "load") loadListeners.push(listener);
    },
};

try {
    await client.whoami();
} catch (error) {
    process.stderr.write(`widget-bridge-widget-api: the access token does not work: ${error}\n`);
    process.exit(2);
}

const api = new ClientWidgetApi(widget, iframe, new ElementLikeDriver());
api.setViewedRoomId(roomId);

// The room's new timeline events go to ClientWidgetApi, which decides what the widget may
// receive. Events sent before the bridge started are history, not passed on (the initial sync's).
// Syncing starts in the background: a homeserver without what the js-sdk asks first (push rules,
// filters) only delays it, as it retries, and the driver works meanwhile.
const startedAt = Date.now();
client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline) => {
    if (toStartOfTimeline || room?.roomId !== roomId || event.getTs() < startedAt) return;
    api.feedEvent(event.getEffectiveEvent()).catch((error) =>
        process.stderr.write(`widget-bridge-widget-api: feeding an event to the widget failed: ${error}\n`),
    );
});
client.on(ClientEvent.Sync, (state, previous) => {
    if (state !== previous) process.stderr.write(`widget-bridge-widget-api: sync ${state}\n`);
});
client.startClient({ initialSyncLimit: 1 }).catch((error) =>
    process.stderr.write(`widget-bridge-widget-api: the js-sdk client did not start syncing: ${error}\n`),
);

writeLine({
    bridge: {
        name: "matrix-widget-api",
        version: `${packageVersion("matrix-widget-api")} (matrix-js-sdk ${packageVersion("matrix-js-sdk")})`,
    },
});

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
    if (!line.trim()) return;
    let data;
    try {
        data = JSON.parse(line);
    } catch (error) {
        process.stderr.write(`widget-bridge-widget-api: ignoring a line that is not JSON: ${line}\n`);
        return;
    }
    for (const listener of messageListeners) {
        // As a browser does: an exception thrown by a message listener is reported, and the page
        // (this process) lives on; the request it was handling stays unanswered.
        try {
            listener({ data, origin: widget.origin });
        } catch (error) {
            process.stderr.write(`widget-bridge-widget-api: a message listener threw: ${error?.stack ?? error}\n`);
        }
    }
});
lines.on("close", () => process.exit(0));

// The iframe "loaded": ClientWidgetApi starts the capability handshake now, or (waitForIframeLoad
// false) waits for the widget's content_loaded.
for (const listener of loadListeners) listener({});
