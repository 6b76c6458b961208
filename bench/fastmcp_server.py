"""The FastMCP 4.2 server the benchmark measures toolgate against.

One tool, `add(a, b)`, behind `RemoteAuthProvider(JWTVerifier(...))` pointed at the same identity
provider as toolgate, on uvicorn (one process, FastMCP's default): in stateless JSON mode, or with
--session in FastMCP's default mode, where `initialize` opens a session and replies are SSE streams.

    fastmcp_server.py --port PORT --idp http://127.0.0.1:IDP_PORT --audience AUD [--session]
    fastmcp_server.py --port PORT --no-auth [--session]
"""

import argparse

from fastmcp import FastMCP
from fastmcp.server.auth import RemoteAuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from pydantic import AnyHttpUrl


def build(args: argparse.Namespace) -> FastMCP:
    base_url = f"http://127.0.0.1:{args.port}"
    auth = None
    if not args.no_auth:
        idp = args.idp.rstrip("/")
        verifier = JWTVerifier(
            jwks_uri=f"{idp}/.well-known/jwks.json",
            # Auth0's issuer ends with a slash, and so does the dev-idp's.
            issuer=f"{idp}/",
            audience=args.audience,
        )
        auth = RemoteAuthProvider(
            token_verifier=verifier,
            authorization_servers=[AnyHttpUrl(f"{idp}/")],
            base_url=base_url,
        )
    mcp = FastMCP("fastmcp-bench", auth=auth)

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idp", help="the identity provider's base URL")
    parser.add_argument("--audience", help="the API identifier tokens must carry in aud")
    parser.add_argument("--no-auth", action="store_true")
    parser.add_argument("--session", action="store_true", help="sessions and SSE replies (the default of FastMCP)")
    args = parser.parse_args()
    if not args.no_auth and not (args.idp and args.audience):
        parser.error("--idp and --audience are needed unless --no-auth")
    build(args).run(
        transport="http",
        host="127.0.0.1",
        port=args.port,
        show_banner=False,
        stateless_http=not args.session,
        json_response=not args.session,
        log_level="warning",
        # Without a line per request FastMCP is at its fastest; toolgate logs nothing per request either.
        uvicorn_config={"access_log": False},
    )


if __name__ == "__main__":
    main()
