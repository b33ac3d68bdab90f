"""Computing KPIs: the plugin manager, registry, runner, scheduler, backfill; may import store and below."""
