"""A rogue mDNS answerer for tests: advertises ``_edgek8s._tcp.local.`` with a CA hash it does not hold.

``python -m tests.support.mdns_liar --name a-rogue --address 127.0.0.1 --port 6443 --ca-hash sha256:...``
runs until killed (SIGTERM says goodbye on mDNS).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from edgek8s.discovery.mdns import Advertiser


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-hash", required=True)
    parser.add_argument("--interface", action="append", default=[])
    args = parser.parse_args()
    advertiser = Advertiser(name=args.name, port=args.port, addresses=[args.address], cluster="liar",
                            ca_hash=args.ca_hash, interfaces=args.interface or None)
    await advertiser.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("advertising", flush=True)
    await stop.wait()
    await advertiser.close()


if __name__ == "__main__":
    asyncio.run(main())
