"""The offline replay of a recorded log through the core, and its terminal report.

Never imports the live worker: both report to the same `streams.observer`.
"""
