"""A supervisor agent that hands work to a sub-agent over HTTP, passing W3C trace context.

Run: python -m tests.agents.supervisor ASSAY_URL SUB_AGENT_URL; prints the trace id.
"""

from __future__ import annotations

import sys

import httpx

import assay


@assay.traced(type="agent", name="supervisor")
def supervise(question: str, sub_agent_url: str) -> str:
    with assay.span("call sub-agent", type="tool") as call:
        headers: dict[str, str] = {}
        assay.propagation.inject(headers)
        answer = httpx.post(sub_agent_url, json={"task": question}, headers=headers).json()
        call.log(output=answer)
    print(assay.current_span().trace_id, flush=True)
    return str(answer["answer"])


if __name__ == "__main__":
    assay.init("distributed", url=sys.argv[1])
    supervise("battery regulation", sys.argv[2])
