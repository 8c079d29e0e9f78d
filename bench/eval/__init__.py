"""`make eval`: how good Brief's reports are, on a bundled set of questions (`bench/eval/cases`).

Each case is a question, its sources (HTML, plain text, PDF; some off-topic or contradicting
the others) and its nuggets: the facts a good answer contains, each with the sources that
state it. `python -m bench.eval` runs every case through the local stack and scores each report
(`bench.eval.metrics`).
"""
