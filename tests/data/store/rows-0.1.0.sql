-- A store as crmmetrics 0.1.0 wrote it (portable SQL: SQLite and PostgreSQL): one metric with
-- two runs (one failed), its observations, and the standards history of vc_nps (the plugin
-- default, then two admin versions, the second scheduled).
INSERT INTO metric_definitions ("key", plugin, name, description, process, perspective, value_lens, unit, direction, dimensions, formula, source, seen_at)
VALUES ('vc_nps', 'value_creation', 'Net Promoter Score', 'NPS', 'value_creation', 'customer', 'customer', 'points', 'higher_is_better', '[]', 'promoters - detractors', '', '2026-06-01 06:00:00');
INSERT INTO runs (id, metric_key, plugin, started_at, finished_at, duration_seconds, status, error, rows, period)
VALUES (1, 'vc_nps', 'value_creation', '2026-06-01 06:00:00', '2026-06-01 06:00:01', 1.0, 'success', NULL, 2, 'quarter');
INSERT INTO runs (id, metric_key, plugin, started_at, finished_at, duration_seconds, status, error, rows, period)
VALUES (2, 'vc_nps', 'value_creation', '2026-06-02 06:00:00', '2026-06-02 06:00:02', 2.0, 'failed', 'OperationalError: gone', 0, 'quarter');
INSERT INTO observations (id, run_id, metric_key, dimensions, period_label, period_start, period_end, value, computed_at)
VALUES (1, 1, 'vc_nps', '{}', 'current', '2026-01-01 00:00:00', '2026-04-01 00:00:00', 41.5, '2026-06-01 06:00:01');
INSERT INTO observations (id, run_id, metric_key, dimensions, period_label, period_start, period_end, value, computed_at)
VALUES (2, 1, 'vc_nps', '{}', 'previous', '2025-10-01 00:00:00', '2026-01-01 00:00:00', 38.0, '2026-06-01 06:00:01');
INSERT INTO standard_changes (id, metric_key, dimensions, origin, target, target_rule, improvement, benchmark, red, green, weight, owner, source, retired, valid_from, changed_by, changed_at, via)
VALUES (1, 'vc_nps', '{}', 'default', 50.0, 'fixed', 0.0, NULL, 20.0, 40.0, 1.0, '', '', FALSE, '2026-01-01 00:00:00', 'plugin:value_creation', '2026-01-01 00:00:00', 'plugin default');
INSERT INTO standard_changes (id, metric_key, dimensions, origin, target, target_rule, improvement, benchmark, red, green, weight, owner, source, retired, valid_from, changed_by, changed_at, via)
VALUES (2, 'vc_nps', '{}', 'admin', 45.0, 'fixed', 0.0, NULL, 25.0, 42.0, 2.0, 'Head of Service', 'plan 2026', FALSE, '2026-03-01 00:00:00', 'alice', '2026-03-01 09:00:00', 'standards set');
INSERT INTO standard_changes (id, metric_key, dimensions, origin, target, target_rule, improvement, benchmark, red, green, weight, owner, source, retired, valid_from, changed_by, changed_at, via)
VALUES (3, 'vc_nps', '{}', 'admin', 55.0, 'fixed', 0.0, NULL, 30.0, 50.0, 2.0, 'Head of Service', 'plan 2027', FALSE, '2027-01-01 00:00:00', 'bob', '2026-06-01 10:00:00', 'standards import standards.toml');
