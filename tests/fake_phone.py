"""A fake phone web server for Active URI tests: `GET /cgi-bin/ConfigManApp.com?key=...`
with the admin credentials (Basic or Digest, checked by netboot.http.auth), each
accepted request appended to a JSON-lines log. Modes: `any` (Basic or Digest),
`digest` (Digest only, Basic refused), `hang` (never answers)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from aiohttp import web

from netboot.http.auth import Authenticator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--mode", choices=("any", "digest", "hang"), default="any")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    log = Path(args.log)
    auth = Authenticator(args.user, args.password, realm="fake phone")

    async def handle(request: web.Request) -> web.Response:
        if args.mode == "hang":
            await asyncio.Event().wait()
        header = request.headers.get("Authorization", "")
        if args.mode == "digest" and header.startswith("Basic"):
            verdict = "denied"
        else:
            verdict = auth.check(header or None, request.method, request.raw_path)
        if verdict != "ok":
            response = web.Response(status=401, text="401\n")
            for challenge in auth.challenges(stale=verdict == "stale"):
                if args.mode != "digest" or challenge.startswith("Digest"):
                    response.headers.add("WWW-Authenticate", challenge)
            return response
        with log.open("a") as f:
            f.write(
                json.dumps({"keys": request.query.get("key", ""), "auth": header.split()[0]}) + "\n"
            )
        return web.Response(text="OK\n")

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/cgi-bin/ConfigManApp.com", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, args.bind, args.port).start()
        log.touch()  # ready
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
