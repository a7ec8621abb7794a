"""Webhooks: signed HTTP POSTs with payload templates for common gateways.

Every request carries::

    X-Lifewatch-Delivery:  <outbox id>               the idempotency key (also Idempotency-Key: lifewatch-outbox-<id>)
    X-Lifewatch-Event:     alert.raised | alert.transition | ...
    X-Lifewatch-Timestamp: <unix seconds>            from the worker's clock; part of the signed material
    X-Lifewatch-Signature: sha256=<hex>              HMAC-SHA256(secret, "<timestamp>." + raw body), when a secret is set

A receiver recomputes the HMAC over the raw body bytes it got, compares in
constant time (:func:`verify`), refuses timestamps too far from its own clock
(replays), and drops deliveries whose id it has seen (at-least-once: a
delivery can arrive twice, e.g. when the answer to a successful POST was lost).

Templates (``template:`` in the webhook file):

* ``generic``: ``application/json``, :meth:`Notice.doc` plus ``text`` (zh, en, body);
* ``wecom``: WeCom (企业微信) group robot, ``{"msgtype": "markdown", "markdown": {"content": ...}}``
  (content cut to 4096 bytes, WeCom's limit);
* ``dingtalk``: DingTalk (钉钉) custom robot, ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``;
  with a secret, DingTalk's own signature is added as query parameters
  ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")) (DingTalk's
  "加签" as documented for custom robots; DingTalk refuses a timestamp more than an hour off);
* ``sms``: ``text/plain; charset=utf-8``, a short bilingual text for an SMS gateway.

Answers: 2xx delivered (for WeCom/DingTalk, whose errors come as HTTP 200,
only with ``errcode`` 0; their rate-limit codes are retried); 408, 425, 429,
5xx and connection errors are retried with backoff; 3xx (redirects are never
followed) and other 4xx are permanent: the delivery is dead, with the reason.

>>> body = b'{"outbox_id":1}'
>>> sig = sign("s3cret", "1767254400", body)
>>> sig
'sha256=a47d5c9b1e6490049c2b5641284382841acea689493ae6255690f9d6ebdc735f'
>>> verify("s3cret", "1767254400", body, sig, now=1767254460)
True
>>> verify("s3cret", "1767254400", body + b" ", sig, now=1767254460), verify("s3cret", "1767254400", body, sig, now=1767258000)
(False, False)
>>> dingtalk_sign("SECabc", 1767254400000)
'Yj1rWx4bpXKJZWJ8U0DTTTp0lDkzN7MjoQoQHRoIJxg='
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from alerts.notify.channel import DELIVERED, Channel, Outcome, Route, dead, retry, until_first_retry
from alerts.notify.config import WebhookSpec
from alerts.notify.errors import AddressRefused, Permanent, Transient
from alerts.notify.message import Notice, Texts
from alerts.notify.ssrf import check_url, redact

log = logging.getLogger("lifewatch.notify.webhook")

USER_AGENT = "lifewatch-notify/0.1"
SIGNATURE_TOLERANCE_S = 300  # a receiver's replay window; 5 min as in Stripe/Slack signing [U: project default]
WECOM_MAX_BYTES = 4096  # WeCom group robot: markdown content at most 4096 bytes (UTF-8)
DINGTALK_MAX_BYTES = 20000  # DingTalk custom robot message size (about 20 000 bytes)
RETRY_STATUS = frozenset({408, 425, 429})
# gateway error codes that mean "slow down" (retry): WeCom 45009 api freq out of limit, DingTalk 130101
# send too fast; -1 "system busy" on both
GATEWAY_RETRY_CODES = frozenset({-1, 45009, 130101})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, now: float, tolerance: float = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: constant-time compare, and refuse stale timestamps."""
    try:
        if abs(now - int(timestamp)) > tolerance:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk custom-robot signature: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def _cut(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[: max_bytes - 3].decode("utf-8", errors="ignore") + "…"


def render(template: str, n: Notice, texts: Texts) -> tuple[str, bytes]:
    """(content type, body) of one notice in one template."""
    if template == "generic":
        doc = {**n.doc(), "text": {"zh": texts.title_zh(n), "en": texts.title_en(n), "body": texts.plain(n)}}
        return "application/json", orjson.dumps(doc)
    if template == "wecom":
        content = _cut(texts.markdown(n, wecom_colour=True), WECOM_MAX_BYTES)
        return "application/json", orjson.dumps({"msgtype": "markdown", "markdown": {"content": content}})
    if template == "dingtalk":
        text = _cut(texts.markdown(n), DINGTALK_MAX_BYTES)
        return "application/json", orjson.dumps({"msgtype": "markdown", "markdown": {"title": texts.title_zh(n), "text": text}})
    if template == "sms":
        return "text/plain; charset=utf-8", texts.sms(n).encode("utf-8")
    raise ValueError(f"unknown webhook template {template!r}")


class WebhookChannel(Channel):
    def __init__(
        self,
        spec: WebhookSpec,
        texts: Texts,
        *,
        allow_private: bool = False,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.spec = spec
        self.name = spec.channel
        self.route = Route(units=spec.units, levels=spec.levels, events=spec.events)
        self.texts = texts
        self.allow_private = allow_private
        self.timeout = timeout
        self._transport = transport
        self._http: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"WebhookChannel({self.spec!r})"

    def open(self) -> None:
        if self._http is None:
            # never follow redirects (they could point inward), never use proxy variables (the SSRF check
            # is about the address we connect to)
            self._http = httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False, transport=self._transport)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def deliver(self, notices: list[Notice], now: datetime) -> list[Outcome]:
        self.open()
        outcomes = []
        for n in notices:
            o = self._one(n, now)
            outcomes.append(o)
            if o.error:
                log.warning("%s: outbox %d %s: %s", self.name, n.outbox_id, o.result, o.error)
            if o.result == "retry":
                break
        return until_first_retry(outcomes, len(notices))

    def request(self, n: Notice, now: datetime) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of one delivery; pure, for tests and receivers' documentation."""
        content_type, body = render(self.spec.template, n, self.texts)
        ts = str(int(now.timestamp()))
        headers = {
            "Content-Type": content_type,
            "User-Agent": USER_AGENT,
            "X-Lifewatch-Delivery": str(n.outbox_id),
            "X-Lifewatch-Event": n.kind,
            "X-Lifewatch-Timestamp": ts,
            "Idempotency-Key": f"lifewatch-outbox-{n.outbox_id}",
        }
        url = self.spec.url
        if self.spec.secret:
            headers["X-Lifewatch-Signature"] = sign(self.spec.secret, ts, body)
            if self.spec.template == "dingtalk":
                ms = int(now.timestamp() * 1000)
                query = urlencode({"timestamp": ms, "sign": dingtalk_sign(self.spec.secret, ms)})
                url = f"{url}{'&' if '?' in url else '?'}{query}"
        return url, headers, body

    def _one(self, n: Notice, now: datetime) -> Outcome:
        try:
            check_url(self.spec.url, self.allow_private)
        except AddressRefused as exc:
            return dead(str(exc))
        except Transient as exc:
            return retry(str(exc))
        except Permanent as exc:
            return dead(str(exc))
        url, headers, body = self.request(n, now)
        assert self._http is not None
        try:
            resp = self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return retry(self._scrub(f"timeout ({type(exc).__name__}) posting to {redact(self.spec.url)}"))
        except httpx.HTTPError as exc:
            return retry(self._scrub(f"{type(exc).__name__} posting to {redact(self.spec.url)}: {exc}"))
        return self._judge(resp)

    def _judge(self, resp: httpx.Response) -> Outcome:
        status = resp.status_code
        text = self._scrub(resp.text[:300].strip())
        if 200 <= status < 300:
            if self.spec.template in ("wecom", "dingtalk"):
                return self._gateway_answer(resp)
            return DELIVERED
        if 300 <= status < 400:
            return dead(f"HTTP {status}: redirects are not followed (to {redact(resp.headers.get('location', '?'))})")
        if status in RETRY_STATUS or status >= 500:
            return retry(f"HTTP {status}: {text}")
        return dead(f"HTTP {status}: {text}")

    def _gateway_answer(self, resp: httpx.Response) -> Outcome:
        try:
            doc: Any = orjson.loads(resp.content)
            code = int(doc.get("errcode", 0))
            msg = str(doc.get("errmsg", ""))[:200]
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return DELIVERED  # a 2xx without the usual JSON: the gateway took it
        if code == 0:
            return DELIVERED
        reason = f"{self.spec.template} errcode {code}: {self._scrub(msg)}"
        return retry(reason) if code in GATEWAY_RETRY_CODES else dead(reason)

    def _scrub(self, text: str) -> str:
        """No secret and no query string (access tokens) in anything recorded or logged."""
        if self.spec.secret:
            text = text.replace(self.spec.secret, "***")
        return text.replace(self.spec.url, redact(self.spec.url))
