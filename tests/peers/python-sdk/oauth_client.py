"""Signs in to a toolgate server with the official MCP Python SDK and calls its tools.

The SDK's `OAuthClientProvider` does the whole OAuth flow itself: protected-resource and
authorization-server discovery, dynamic registration, authorization with PKCE, the code exchange
and the refresh. What a person does in a browser is done by `ScriptedBrowser`: it follows the
authorization URL, answers each HTML form it meets (toolgate's consent page, then the identity
provider's login and consent pages) the way a person who approves would, and stops at the redirect
to the client's redirect URI, which is never actually served.

Prints one JSON object on stdout (logs go to stderr); the Rust test asserts on it. Tokens appear
only as fingerprints and decoded claims.

With `--revoke`, it then revokes its refresh token at the authorization server's revocation
endpoint (RFC 7009, client_secret_basic) and reports whether its last access token still opens an
MCP session before and after.

Usage: python oauth_client.py --mcp-url URL --first-tool NAME [--expiry-tool NAME]
                              [--login USER] [--password PASSWORD] [--revoke]
"""

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import re
import sys
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

CLIENT_NAME = "toolgate Python SDK test client"
# Registered but never listened on: the browser stand-in stops at the redirect to it.
REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"
MAX_BROWSER_STEPS = 20


def fingerprint(secret: str | None) -> str | None:
    if secret is None:
        return None
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def jwt_claims(token: str) -> dict | None:
    """The payload of a JWT, unverified: only to report what the server put in it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None


class RecordingStorage:
    """The SDK's `TokenStorage`, in memory, keeping every token set it is given."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.history: list[dict] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        claims = jwt_claims(tokens.access_token) or {}
        self.history.append(
            {
                "received_at": time.time(),
                "access_token": fingerprint(tokens.access_token),
                "refresh_token": fingerprint(tokens.refresh_token),
                "expires_in": tokens.expires_in,
                "scope": tokens.scope,
                "claims": {k: claims.get(k) for k in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id")},
            }
        )

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class FormParser(HTMLParser):
    """The forms of a page with their fields and submit buttons, and the text of elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.text_by_id: dict[str, str] = {}
        self._open_ids: list[tuple[str, str]] = []
        self._title = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "title":
            self._title = True
        if "id" in attrs:
            self._open_ids.append((tag, attrs["id"]))
            self.text_by_id.setdefault(attrs["id"], "")
        if tag == "form":
            self.forms.append(
                {"action": attrs.get("action", ""), "method": attrs.get("method", "get").lower(), "fields": [], "buttons": []}
            )
        elif tag in ("input", "button") and self.forms:
            kind = attrs.get("type", "submit" if tag == "button" else "text").lower()
            entry = {
                "name": attrs.get("name"),
                "value": attrs.get("value", ""),
                "type": kind,
                "checked": "checked" in attrs,
            }
            if kind == "submit":
                self.forms[-1]["buttons"].append(entry)
            else:
                self.forms[-1]["fields"].append(entry)

    def handle_endtag(self, tag):
        if tag == "title":
            self._title = False
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        if self._title:
            self.title += data
        for _, element_id in self._open_ids:
            self.text_by_id[element_id] += data


class ScriptedBrowser:
    """Stands in for the person at the browser: follows redirects, carries cookies, approves."""

    def __init__(self, redirect_uri: str, login: str, password: str) -> None:
        self.redirect_uri = urlsplit(redirect_uri)
        self.fill = {"login": login, "password": password}
        self.user = login
        self.pages: list[dict] = []
        self.authorization_urls: list[str] = []

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        url = self.authorization_urls[-1]
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as browser:
            method, data = "GET", None
            for _ in range(MAX_BROWSER_STEPS):
                target = urlsplit(url)
                if (target.scheme, target.netloc, target.path) == (
                    self.redirect_uri.scheme,
                    self.redirect_uri.netloc,
                    self.redirect_uri.path,
                ):
                    params = {k: v[0] for k, v in parse_qs(target.query).items()}
                    self.pages.append({"kind": "client-redirect", "params": sorted(params)})
                    if "error" in params:
                        raise RuntimeError(f"the authorization ended in an error: {params}")
                    return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))
                response = await browser.request(method, url, data=data)
                method, data = "GET", None
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200 or "html" not in response.headers.get("content-type", ""):
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
                method, url, data = self.answer(url, response)
        raise RuntimeError(f"no redirect to the client after {MAX_BROWSER_STEPS} steps")

    def answer(self, url: str, response: httpx2.Response) -> tuple[str, str, dict]:
        """Fills and submits the page's form as a person who approves would."""
        page = FormParser()
        page.feed(response.text)
        forms = [f for f in page.forms if f["method"] == "post"]
        if not forms:
            raise RuntimeError(f"{url} shows no form to answer: {response.text[:500]}")
        form = forms[0]
        names = {f["name"] for f in form["fields"] if f["name"]}
        if "csrf_token" in names:
            kind = "toolgate-consent"
        elif "request_id" in names:
            kind = "idp-login"
        elif "login" in names:
            kind = "idp-login"
        else:
            kind = "idp-consent"
        self.pages.append(
            {
                "kind": kind,
                "origin": f"{urlsplit(url).scheme}://{urlsplit(url).netloc}",
                "title": page.title.strip(),
                "client_name": page.text_by_id.get("client-name", "").strip() or None,
                "redirect_host": page.text_by_id.get("redirect-host", "").strip() or None,
                "frame_options": response.headers.get("x-frame-options"),
            }
        )
        data: dict[str, str | list[str]] = {}
        for field in form["fields"]:
            name = field["name"]
            if not name:
                continue
            if field["type"] in ("checkbox", "radio"):
                chosen = field["checked"]
                # The dev login page lists users as radios: pick the one asked for.
                if field["type"] == "radio" and name == "user":
                    chosen = self.user in (field["value"], field["value"].split("|")[-1])
                if chosen:
                    existing = data.get(name)
                    if existing is None or field["type"] == "radio":
                        data[name] = field["value"]
                    else:
                        data[name] = (existing if isinstance(existing, list) else [existing]) + [field["value"]]
            else:
                data[name] = self.fill.get(name, field["value"])
        buttons = form["buttons"]
        button = next((b for b in buttons if b["value"] == "approve"), buttons[0] if buttons else None)
        if button and button["name"]:
            data[button["name"]] = button["value"]
        return "POST", urljoin(url, form["action"]), data


class RequestLog:
    """Every HTTP exchange the SDK makes (MCP and OAuth alike), without secrets."""

    def __init__(self) -> None:
        self.entries: list[dict] = []

    async def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        auth = request.headers.get("authorization", "")
        body = request.content.decode(errors="replace") if request.method == "POST" else ""
        entry = {
            "at": time.time(),
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "bearer": fingerprint(auth[7:]) if auth.lower().startswith("bearer ") else None,
        }
        if request.url.path.endswith("/token"):
            form = parse_qs(body)
            entry["grant_type"] = form.get("grant_type", [None])[0]
            entry["resource"] = form.get("resource", [None])[0]
            if response.status_code != 200:
                await response.aread()
                entry["error"] = response.text[:300]
        if request.url.path.endswith("/authorize"):
            entry["query"] = sorted(parse_qs(request.url.query.decode() if isinstance(request.url.query, bytes) else request.url.query))
        if request.headers.get("content-type", "").startswith("application/json") and request.url.path.endswith("/mcp"):
            match = re.search(r'"method"\s*:\s*"([^"]+)"', body)
            entry["rpc"] = match.group(1) if match else None
        self.entries.append(entry)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "revocation-check", "version": "1"}},
}


async def opens_session(mcp_url: str, access_token: str) -> int:
    """The status of an `initialize` sent with this access token, outside the SDK's auth flow."""
    async with httpx2.AsyncClient(timeout=30) as raw:
        response = await raw.post(
            mcp_url,
            json=INITIALIZE,
            headers={
                "authorization": f"Bearer {access_token}",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2025-11-25",
            },
        )
        return response.status_code


async def revoke(mcp_url: str, storage: "RecordingStorage") -> dict:
    """Revokes the refresh token as RFC 7009 says and checks the access token before and after."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(mcp_url))
    access_token = storage.tokens.access_token
    before = await opens_session(mcp_url, access_token)
    async with httpx2.AsyncClient(timeout=30) as raw:
        metadata = (await raw.get(f"{origin}/.well-known/oauth-authorization-server")).json()
        info = storage.client_info
        response = await raw.post(
            metadata["revocation_endpoint"],
            data={"token": storage.tokens.refresh_token, "token_type_hint": "refresh_token"},
            auth=(info.client_id, info.client_secret),
        )
    after = await opens_session(mcp_url, access_token)
    return {"before": before, "status": response.status_code, "after": after}


def tool_result(result) -> dict:
    text = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    return {"is_error": result.is_error, "structured": result.structured_content, "text": text}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mcp-url", required=True)
    parser.add_argument("--first-tool", required=True)
    parser.add_argument("--expiry-tool")
    parser.add_argument("--login", default="alice")
    parser.add_argument("--password", default="any password")
    parser.add_argument("--revoke", action="store_true")
    args = parser.parse_args()

    storage = RecordingStorage()
    browser = ScriptedBrowser(REDIRECT_URI, args.login, args.password)
    log = RequestLog()
    provider = OAuthClientProvider(
        server_url=args.mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    report: dict = {"client_name": CLIENT_NAME, "redirect_uri": REDIRECT_URI}
    http = httpx2.AsyncClient(auth=provider, timeout=60, event_hooks={"response": [log.on_response]})
    try:
        async with http, Client(streamable_http_client(args.mcp_url, http_client=http)) as client:
            listed = await client.list_tools()
            report["tools"] = sorted(tool.name for tool in listed.tools)
            report["first_call"] = tool_result(await client.call_tool(args.first_tool, {}))
            if args.expiry_tool:
                first = storage.history[-1]
                # Past the token's lifetime as the SDK computed it from expires_in, plus a margin
                # for the server's own clock check: the next request must refresh first.
                await asyncio.sleep(max(0, first["received_at"] + first["expires_in"] - time.time()) + 1.5)
                report["expired_at"] = first["received_at"] + first["expires_in"]
                report["after_expiry_call"] = tool_result(await client.call_tool(args.expiry_tool, {}))
        if args.revoke:
            report["revocation"] = await revoke(args.mcp_url, storage)
    finally:
        report["registered"] = (
            {
                "client_id": storage.client_info.client_id,
                "has_secret": storage.client_info.client_secret is not None,
                "token_endpoint_auth_method": storage.client_info.token_endpoint_auth_method,
            }
            if storage.client_info
            else None
        )
        report["authorization_urls"] = len(browser.authorization_urls)
        report["authorization_query"] = (
            sorted(parse_qs(urlsplit(browser.authorization_urls[0]).query)) if browser.authorization_urls else []
        )
        report["pages"] = browser.pages
        report["tokens"] = storage.history
        report["requests"] = log.entries
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())
