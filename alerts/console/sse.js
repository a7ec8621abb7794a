// A Server-Sent-Events parser for streams read with fetch(): EventSource cannot send an
// Authorization header, and the API takes the token from that header only.
// Follows the HTML standard's "interpreting an event stream": lines end in CRLF, LF or CR;
// "field: value" (one leading space dropped); ":" starts a comment; a blank line dispatches.

export class SSEParser {
  // onEvent({id, type, data}) for each event; onRetry(ms) when the server sets the reconnection time.
  constructor(onEvent, onRetry = () => {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.buf = "";
    this.data = [];
    this.type = "";
    this.lastId = "";
  }

  // Feed decoded text, in chunks of any size (a line or a CRLF may be split across chunks).
  push(chunk) {
    const b = this.buf + chunk;
    let start = 0;
    let i = 0;
    while (i < b.length) {
      const c = b.charCodeAt(i);
      if (c === 10 || c === 13) {
        if (c === 13 && i + 1 === b.length) break; // a CR last: wait, the LF of a CRLF may follow
        this.line(b.slice(start, i));
        i += c === 13 && b.charCodeAt(i + 1) === 10 ? 2 : 1;
        start = i;
      } else {
        i += 1;
      }
    }
    this.buf = b.slice(start);
  }

  line(text) {
    if (text === "") {
      if (this.data.length) {
        const ev = { id: this.lastId, type: this.type || "message", data: this.data.join("\n") };
        this.data = [];
        this.type = "";
        this.onEvent(ev);
      } else {
        this.type = "";
      }
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    else if (field === "id") {
      if (!value.includes("\0")) this.lastId = value;
    } else if (field === "retry" && /^\d+$/.test(value)) this.onRetry(Number(value));
  }
}
