package checkpoint

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type corruptCase struct {
	content func() []byte
	wantErr error
}

// corruptCases are ways a record can go bad; good is a valid record of
// claim uid-1.
func corruptCases(t *testing.T, good []byte) map[string]corruptCase {
	return map[string]corruptCase{
		"truncated": {content: func() []byte { return good[:len(good)/2] }, wantErr: ErrCorrupt},
		"empty":     {content: func() []byte { return []byte{} }, wantErr: ErrCorrupt},
		"flipped bit in payload": {
			content: func() []byte {
				i := bytes.Index(good, []byte(`"GPU-1234"`)) + 5
				out := bytes.Clone(good)
				out[i] ^= 0x04
				return out
			},
			wantErr: ErrCorrupt,
		},
		"garbage": {content: func() []byte { return []byte("\x00\x01not json at all") }, wantErr: ErrCorrupt},
		"flipped byte in payload": {
			content: func() []byte {
				return bytes.Replace(good, []byte(`"name":"claim-uid-1"`), []byte(`"name":"claim-uid-2"`), 1)
			},
			wantErr: ErrCorrupt,
		},
		"wrong checksum": {
			content: func() []byte {
				i := bytes.Index(good, []byte(checksumPrefix)) + len(checksumPrefix)
				out := bytes.Clone(good)
				out[i] ^= 0x01
				return out
			},
			wantErr: ErrCorrupt,
		},
		"no checksum": {
			content: func() []byte { return []byte(`{"version":1,"payload":{"bootID":"boot-1","claim":{"uid":"uid-1"}}}`) },
			wantErr: ErrCorrupt,
		},
		"no version": {
			content: func() []byte { return bytes.Replace(good, []byte(`"version":1,`), nil, 1) },
			wantErr: ErrCorrupt,
		},
		"unknown future version": {
			content: func() []byte { return bytes.Replace(good, []byte(`"version":1,`), []byte(`"version":2,`), 1) },
			wantErr: ErrUnsupportedVersion,
		},
		"record of another claim": {
			content: func() []byte {
				other, err := encodeRecord(testBoot, makeClaim("uid-9"))
				require.NoError(t, err)
				return other
			},
			wantErr: ErrCorrupt,
		},
		"no boot id": {
			content: func() []byte {
				p := `{"bootID":"","claim":{"uid":"uid-1"}}`
				return fmt.Appendf(nil, `{"version":1,"checksum":%q,"payload":%s}`, checksum([]byte(p)), p)
			},
			wantErr: ErrCorrupt,
		},
	}
}

func TestCorruptRecordsAreQuarantined(t *testing.T) {
	good, err := encodeRecord(testBoot, makeClaim("uid-1"))
	require.NoError(t, err)
	tests := corruptCases(t, good)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openStore(t, dir, testBoot)
			require.NoError(t, s.Put(makeClaim("uid-2")), "a good neighbour")
			bad := tc.content()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "uid-1.json"), bad, 0o600))

			s2, rep := openStore(t, dir, testBoot)
			assert.Equal(t, []Claim{makeClaim("uid-2")}, s2.List(), "the good record still loads")
			require.Len(t, rep.Problems, 1)
			assert.ErrorIs(t, rep.Problems[0], tc.wantErr)
			assert.Contains(t, rep.Problems[0].Error(), "uid-1.json")
			require.Len(t, rep.Quarantined, 1)
			q := rep.Quarantined[0]
			assert.Equal(t, filepath.Join(dir, quarantineDir), filepath.Dir(q))
			assert.True(t, strings.HasPrefix(filepath.Base(q), "uid-1.json."))
			moved, err := os.ReadFile(q)
			require.NoError(t, err)
			assert.Equal(t, bad, moved, "kept byte for byte")
			assert.NoFileExists(t, filepath.Join(dir, "uid-1.json"))

			_, rep = openStore(t, dir, testBoot)
			assert.Empty(t, rep.Quarantined, "quarantined records are not read again")
		})
	}
}

func TestUnreadableRecordIsReported(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files regardless of mode")
	}
	dir := t.TempDir()
	s, _ := openStore(t, dir, testBoot)
	require.NoError(t, s.Put(makeClaim("uid-1")))
	require.NoError(t, os.Chmod(filepath.Join(dir, "uid-1.json"), 0))
	_, rep := openStore(t, dir, testBoot)
	require.Len(t, rep.Problems, 1)
	assert.ErrorIs(t, rep.Problems[0], ErrCorrupt)
	assert.Len(t, rep.Quarantined, 1)
}

// TestRecordIsReadableByHand: the record is plain JSON an operator can
// read; reformatting it (e.g. with jq) keeps it valid.
func TestRecordIsReadableByHand(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, testBoot)
	require.NoError(t, s.Put(makeClaim("uid-1")))
	path := filepath.Join(dir, "uid-1.json")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var indented bytes.Buffer
	require.NoError(t, jsonIndent(&indented, data))
	require.NoError(t, os.WriteFile(path, indented.Bytes(), 0o600))
	s2, rep := openStore(t, dir, testBoot)
	assert.Empty(t, rep.Problems)
	got, ok := s2.Get("uid-1")
	require.True(t, ok)
	assert.Equal(t, makeClaim("uid-1"), got)
}
