-- What nodes announce about their accounts' rewards (Batch.Eligibilities,
-- Proposals, ProposalGaps), from which missed rewards are derived.
CREATE TABLE eligibilities (
	source      text COLLATE "C" NOT NULL,
	account     text COLLATE "C" NOT NULL,
	epoch       bigint NOT NULL,
	heights     bigint[],  -- ascending; NULL when the announcement listed none
	counts      bigint[],  -- the rewards possible at each of heights
	final_after bigint NOT NULL,
	time_ns     bigint NOT NULL,
	PRIMARY KEY (source, account, epoch)
);

CREATE TABLE proposals (
	source  text COLLATE "C" NOT NULL,
	account text COLLATE "C" NOT NULL,
	height  bigint NOT NULL,
	id      text NOT NULL,
	time_ns bigint NOT NULL,
	PRIMARY KEY (source, account, height)
);

-- Height ranges in which announcements may have been lost, merged like
-- coverage.
CREATE TABLE proposal_gaps (
	source      text COLLATE "C" NOT NULL,
	from_height bigint NOT NULL,
	to_height   bigint NOT NULL,
	PRIMARY KEY (source, from_height)
);
