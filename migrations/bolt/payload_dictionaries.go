package bolt

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// recordPayloadDictionaries creates the bucket of payload dictionaries and
// records dictionary 1: files before version 4 packed every event payload
// with one fixed list of fragments that the code held, and their values
// name no dictionary. With the list in the file, the store reads them
// without knowing where the fragments came from.
//
// The list is frozen here, as this step wrote it: a migration never
// follows live code. (The Flow source still packs with the same list
// under the same id; Apply refuses an id whose fragments differ from
// the file's, so a drift cannot pass unnoticed.)
func recordPayloadDictionaries(tx *bbolt.Tx) error {
	b, err := tx.CreateBucketIfNotExists(BucketPayloadDicts)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", BucketPayloadDicts, err)
	}
	v, err := json.Marshal(dictionary1)
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, 1), v)
}

// dictionary1 is the fragment list of files before version 4, in code
// order: the first 29 had one-byte codes, the rest two-byte codes.
var dictionary1 = []string{
	`{"type":"Event","value":{"id":"`,
	`","fields":[{"name":"`,
	`","value":{"type":"`,
	`UFix64","value":"`,
	`Optional","value":{"type":"`,
	`Address","value":"0x`,
	`"}},{"name":"`,
	`"}}}]}}`,
	`"}}]}}`,
	`"}}},{"name":"`,
	`Optional","value":null}`,
	`String","value":"`,
	`UInt64","value":"`,
	`","value":"`,
	`{"type":"`,
	`"},{"type":"`,
	`amount`,
	`UInt32","value":"`,
	`UInt8","value":"`,
	`Bool","value":`,
	`Array","value":[`,
	`Dictionary","value":[{"key":{"type":"`,
	`"}},{"key":{"type":"`,
	`Struct","value":{"id":"`,
	`Int","value":"`,
	`"value":`,
	`"type":"`,
	`{"name":"`,
	`.00000000`,
	`Resource","value":{"id":"`,
	`Event","value":{"id":"`,
	`Path","value":{"domain":"`,
	`","identifier":"`,
	`Type","value":{"staticType":`,
	`Fix64","value":"`,
	`Int8","value":"`,
	`Int16","value":"`,
	`Int32","value":"`,
	`Int64","value":"`,
	`Int128","value":"`,
	`Int256","value":"`,
	`UInt16","value":"`,
	`UInt128","value":"`,
	`UInt256","value":"`,
	`Word8","value":"`,
	`Word16","value":"`,
	`Word32","value":"`,
	`Word64","value":"`,
	`Character","value":"`,
	`Void"}`,
	`Capability","value":{`,
	`Enum","value":{"id":"`,
	`Contract","value":{"id":"`,
	`"kind":"`,
	`"typeID":"`,
	`"fields":[`,
	`"id":"`,
	`"key":`,
	`"address":"0x`,
	`"borrowType":`,
	`"staticType":`,
	`"initializers":[]`,
	`from`,
	`nodeID`,
	`delegatorID`,
	`uuid`,
	`address`,
	`inclusionEffort`,
	`executionEffort`,
	`fromFees`,
	`minted`,
	`feesBurned`,
	`total`,
	`storage`,
	`public`,
	`private`,
	`true`,
	`false`,
	`null`,
	`"},{"`,
	`":{"`,
	`":"`,
	`","`,
	`":[`,
	`"}]`,
	`"}}`,
}
