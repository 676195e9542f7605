package store

import (
	"math/big"
	"time"
)

// Page is one page of a list query. Next is the opaque cursor of the next
// page; empty means the end.
type Page[T any] struct {
	Items []T
	Next  string
}

// DefaultLimit and MaxLimit bound list pages.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// EventQuery selects events. Filters are AND-ed; Types are OR-ed.
type EventQuery struct {
	Source     string
	Types      []string
	Contract   string
	Address    string
	TxID       string
	FromHeight *uint64 // inclusive
	ToHeight   *uint64 // inclusive
	Desc       bool
	Limit      int    // 0 means DefaultLimit
	Cursor     string // Next of the previous page
}

// BlockQuery selects blocks.
type BlockQuery struct {
	Source     string
	FromHeight *uint64
	ToHeight   *uint64
	Desc       bool
	Limit      int
	Cursor     string
}

// RewardQuery selects rewards. Accounts are OR-ed and match a reward's
// Account or one of its Aliases; Kinds are OR-ed too. Times are
// [FromTime, ToTime); zero means unbounded.
type RewardQuery struct {
	Source     string
	Accounts   []string
	Kinds      []string
	FromTime   time.Time
	ToTime     time.Time
	FromHeight *uint64
	ToHeight   *uint64
	Desc       bool
	Limit      int
	Cursor     string
}

// Summary groupings.
const (
	GroupDay   = "day"
	GroupWeek  = "week"
	GroupMonth = "month"
	GroupEpoch = "epoch"
)

// SummaryQuery groups the rewards a RewardQuery selects into time buckets.
type SummaryQuery struct {
	RewardQuery
	GroupBy  string         // GroupDay, GroupWeek (weeks start on Monday), GroupMonth, GroupEpoch
	Location *time.Location // bucket boundaries for day/week/month; nil means UTC
}

// SummaryRow is the exact sum of one bucket's rewards for one account.
type SummaryRow struct {
	BucketStart time.Time
	BucketEnd   time.Time
	Epoch       *uint64 // set for GroupEpoch
	Source      string
	Account     string
	Unit        string
	Decimals    int
	RawAmount   *big.Int
	Count       uint64
	// Missed counts the bucket's missed rewards (CountMissed), paid to
	// the row's account had they been earned.
	Missed uint64
}

// NodeHistoryQuery selects the status snapshots of one node.
type NodeHistoryQuery struct {
	Source   string
	Node     string
	FromTime time.Time
	ToTime   time.Time
	Desc     bool
	Limit    int
	Cursor   string
}

// RejectedQuery selects quarantined records, in (source, height, key)
// order or reversed with Desc.
type RejectedQuery struct {
	Source     string
	FromHeight *uint64
	ToHeight   *uint64
	Desc       bool
	Limit      int
	Cursor     string
}
