"""Running stages on a Ray cluster (``--ray ADDRESS|auto|local``): an optional extra, ``sftdata[ray]``.

    runtime  connect(): attach to / start a Ray cluster, with a clear error when ray is missing
    filter   sharded_filter_records(): rules + shard-local novelty as Ray tasks, one journal per
             shard under the output directory, then the driver's global ROUGE-L pass
    llm      RayBackend: the LLM stages' requests sent by Ray actors (``llm.ray``); cache, budget
             and journals stay in the driver
    dedup    ray_mapper(): the MinHash-LSH candidate search (``--rouge-blocking lsh``) as Ray tasks

Nothing here is imported on the single-machine path: the CLI imports these modules only when
``--ray`` is given (``llm.client.make_backend`` only when ``llm.ray`` is set), and they import
``ray`` only inside functions. See docs/cluster.md.
"""
