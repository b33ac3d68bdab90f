"""The vocabulary, periods, errors, canonical schema, definitions, config and hook specs; imports no other layer."""
