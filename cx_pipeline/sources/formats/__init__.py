"""Source format modules, discovered by ``cx_pipeline.sources.registry``."""
