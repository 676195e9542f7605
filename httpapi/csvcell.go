package httpapi

// Spreadsheets run a cell that begins with =, +, -, @, a tab or a carriage
// return as a formula, and every text column of an export holds upstream
// text (an event type, a Flow node id, a Presearch key): a node could make
// a user who opens the CSV run `=cmd|' /C calc'!A0`. The OWASP rule for
// CSV injection is applied to text columns: such a cell gets a leading
// single quote, which spreadsheets show as text. Numeric columns are left
// alone, since "-" starts a negative number, and NDJSON, JSON and Parquet
// stay byte-exact for scripts. (owasp.org, "CSV Injection")

// numericColumns are the CSV columns that hold numbers only.
var numericColumns = map[string]bool{
	"height": true, "tx_index": true, "event_index": true, "event_count": true,
	"amount": true, "raw_amount": true, "count": true, "epoch": true, "raw_size": true,
	"checkpoint_height": true, "head_height": true, "lag": true, "lag_threshold": true,
	"events_indexed": true, "blocks_indexed": true, "rewards_indexed": true, "reconnects": true,
	"progress_done": true, "progress_total": true, "progress_rate": true, "progress_eta_seconds": true,
	"rejected": true, "warnings": true,
}

// textColumns says, per column of header, whether the rule applies.
func textColumns(header []string) []bool {
	text := make([]bool, len(header))
	for i, h := range header {
		text[i] = !numericColumns[h]
	}
	return text
}

// neutralizeCell prefixes a text cell a spreadsheet would read as a
// formula with a single quote.
func neutralizeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
