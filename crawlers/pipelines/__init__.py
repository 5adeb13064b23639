"""Item pipelines, one per module, ordered with gaps: normalise → mask → pseudonymise → store."""

PIPELINES = {
    "crawlers.pipelines.normalise.NormalisePipeline": 200,
    "crawlers.pipelines.mask.MaskPipeline": 300,
    "crawlers.pipelines.pseudonymise.PseudonymisePipeline": 400,
    "crawlers.pipelines.store.StorePipeline": 900,
}
