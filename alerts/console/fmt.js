// Times in the city's local time (a fixed UTC offset from the city file, whatever the phone's zone is),
// and numbers for the evidence.  The API sends RFC 3339 UTC; event times carry up to nanoseconds.

import { t } from "./i18n.js";

// Milliseconds since the epoch; NaN for null or garbage.  A time without a zone is UTC (the API stores UTC).
export function parseTime(text) {
  if (!text) return NaN;
  let s = String(text).trim().replace(/(\.\d{3})\d+/, "$1");
  if (!/(Z|[+-]\d\d:?\d\d)$/i.test(s)) s += "Z";
  return Date.parse(s);
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

// "2026-01-01 14:00:05" (seconds: false drops them; date: false gives the time only).
export function formatLocal(text, offsetHours, { seconds = true, date = true } = {}) {
  const ms = parseTime(text);
  if (Number.isNaN(ms)) return "";
  const d = new Date(ms + offsetHours * 3600000);
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}${seconds ? `:${pad(d.getUTCSeconds())}` : ""}`;
  return date ? `${day} ${time}` : time;
}

// "UTC+6", "UTC+5:30", "UTC-3", "UTC".
export function formatOffset(hours) {
  if (!hours) return "UTC";
  const sign = hours < 0 ? "-" : "+";
  const total = Math.round(Math.abs(hours) * 60);
  const h = Math.floor(total / 60);
  const m = total % 60;
  return `UTC${sign}${h}${m ? `:${pad(m)}` : ""}`;
}

export function formatAge(text, now = Date.now()) {
  const ms = parseTime(text);
  if (Number.isNaN(ms)) return "";
  const min = Math.max(0, Math.floor((now - ms) / 60000));
  if (min < 1) return t("ago_now");
  if (min < 60) return t("ago_min", { n: min });
  const h = Math.floor(min / 60);
  if (h < 24) return t("ago_h", { h, m: min % 60 });
  return t("ago_d", { d: Math.floor(h / 24), h: h % 24 });
}

// Four significant digits at most, no trailing zeros; integers as they are.
export function formatNumber(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const decimals = Math.max(0, Math.min(10, 3 - Math.floor(Math.log10(Math.abs(x)))));
  return String(Number(x.toFixed(decimals)));
}
