"""Adapters around the pure core (`hedger`): Kafka/Faust, replay files, metrics, logs, CLI.

Stages and commands here translate between the outside world and `hedger`;
no business rule lives in this package. The layout, from the bottom up:

    settings.py    one source of settings: contract file, Kafka connection, topics
    observer.py    what stages and replay report (Observer, DeadLettered, Origin)
    replay_log.py  reading replay logs (shared by offline/ and kafka_io)
    kafka_io.py    publish/dump/ensure_topics/lag on Kafka
    observe/       metrics, logs, HTTP endpoints (implement Observer)
    offline/       the offline replay and its report
    live/          the worker: a Faust app running the transactional loop, the
                   stages, their tables (topology, table rows, changelog store)
    venue/         the paper venue
    cli/           the `hedger` command, one module per command group

Lower layers never import higher ones; `offline/` and `live/` never import
each other.
"""
