CREATE TABLE metric_definitions (
	key VARCHAR NOT NULL, 
	plugin VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	description VARCHAR NOT NULL, 
	process VARCHAR NOT NULL, 
	perspective VARCHAR NOT NULL, 
	value_lens VARCHAR NOT NULL, 
	unit VARCHAR NOT NULL, 
	direction VARCHAR NOT NULL, 
	dimensions VARCHAR NOT NULL, 
	formula VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	seen_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (key)
);
CREATE TABLE runs (
	id SERIAL NOT NULL, 
	metric_key VARCHAR NOT NULL, 
	plugin VARCHAR NOT NULL, 
	started_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	duration_seconds FLOAT NOT NULL, 
	status VARCHAR NOT NULL, 
	error VARCHAR, 
	rows INTEGER NOT NULL, 
	period VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_runs_metric_id ON runs (metric_key, id);
CREATE INDEX ix_runs_metric_key ON runs (metric_key);
CREATE TABLE standard_changes (
	id SERIAL NOT NULL, 
	metric_key VARCHAR NOT NULL, 
	dimensions VARCHAR NOT NULL, 
	origin VARCHAR NOT NULL, 
	target FLOAT, 
	target_rule VARCHAR NOT NULL, 
	improvement FLOAT NOT NULL, 
	benchmark FLOAT, 
	red FLOAT NOT NULL, 
	green FLOAT NOT NULL, 
	weight FLOAT NOT NULL, 
	owner VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	retired BOOLEAN NOT NULL, 
	valid_from TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	changed_by VARCHAR NOT NULL, 
	changed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	via VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_standard_changes_metric_key ON standard_changes (metric_key);
CREATE TABLE customer_values (
	id SERIAL NOT NULL, 
	run_id INTEGER NOT NULL, 
	metric_key VARCHAR NOT NULL, 
	customer_id INTEGER NOT NULL, 
	values VARCHAR NOT NULL, 
	computed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_customer_values_customer_id ON customer_values (customer_id);
CREATE INDEX ix_customer_values_metric_key ON customer_values (metric_key);
CREATE INDEX ix_customer_values_run_id ON customer_values (run_id);
CREATE TABLE observations (
	id SERIAL NOT NULL, 
	run_id INTEGER NOT NULL, 
	metric_key VARCHAR NOT NULL, 
	dimensions VARCHAR NOT NULL, 
	period_label VARCHAR NOT NULL, 
	period_start TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	period_end TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	value FLOAT, 
	computed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_observations_metric_key ON observations (metric_key);
CREATE INDEX ix_observations_run_id ON observations (run_id);
