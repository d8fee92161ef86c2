"""The live worker on Kafka: the Faust app, its stages and their wire formats.

`app` wires Kafka topics and changelog tables to the `stages` and the
`seller_stage` (crash safety and table writes), which call the core;
`envelopes` and `book_codec` are the JSON shapes of the worker's own topics
and tables.
"""
