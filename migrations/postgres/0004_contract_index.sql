-- Most events' contract is a prefix of their type (Flow's
-- "A.<address>.<Contract>" of "A.<address>.<Contract>.<Event>"): a
-- contract lookup finds those through events_by_type, under each type
-- that starts with the contract, as the bbolt store does. Only the other
-- events need an entry here, which spares ingestion an index.
DROP INDEX events_by_contract;
CREATE INDEX events_by_contract ON events (contract, source, height, tx_index, event_index)
	WHERE contract <> '' AND NOT (starts_with(type, contract) AND type <> contract);
