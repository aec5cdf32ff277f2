package storage

import (
	"os"
	"testing"

	"github.com/tributary/tributary/internal/batch"
	"github.com/tributary/tributary/internal/compress"
	"github.com/tributary/tributary/internal/vfs"
)

// FuzzRecover damages a segment after an unclean shutdown — bytes
// overwritten at some position, the file cut at some length — and states
// recovery's invariants: Open never fails or panics, every batch it then
// serves validates, offsets are contiguous from 0, every batch that lay
// wholly before the damage survives, and appends continue at the end.
func FuzzRecover(f *testing.F) {
	f.Add(uint16(0), []byte{0xff}, uint16(0))
	f.Add(uint16(8), []byte{0x7f, 0xff, 0xff, 0xff}, uint16(0))   // huge length
	f.Add(uint16(100), []byte{}, uint16(950))                     // torn tail
	f.Add(uint16(300), []byte{0, 0, 0, 0, 0, 0, 0, 0}, uint16(0)) // zeros mid-file
	f.Add(uint16(61+5), []byte{0x01}, uint16(0))                  // inside records
	f.Add(uint16(16), []byte{1}, uint16(0))                       // magic 1
	f.Fuzz(func(t *testing.T, at uint16, data []byte, cut uint16) {
		// On the in-memory filesystem: the same recovery code, without
		// real fsyncs, so the fuzzer runs thousands of cases a second.
		fs := vfs.NewMem()
		opts := Options{FS: fs, Files: NewFileCache(8)}
		dir := "/data/p-0"
		cfg := testConfig()
		cfg.IndexIntervalBytes = 128
		l, err := Open(dir, cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		var ends []int64 // file position after each batch
		for i := range 10 {
			if _, err := l.Append(mkBatch(allCodecs[i%len(allCodecs)], int64(i), "f", 3), 0); err != nil {
				t.Fatal(err)
			}
			ends = append(ends, l.active().size)
		}
		size := ends[len(ends)-1]
		crash(l)

		path := segFile(dir, 0, ".log")
		damage := size
		if len(data) > 0 {
			pos := int64(at) % size
			fh, err := fs.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.WriteAt(data, pos); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			damage = pos
		}
		if cut > 0 && int64(cut) < size {
			fh, err := fs.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := fh.Truncate(int64(cut)); err != nil {
				t.Fatal(err)
			}
			fh.Close()
			damage = min(damage, int64(cut))
		}

		l, err = Open(dir, cfg, opts)
		if err != nil {
			t.Fatalf("open after damage: %v", err)
		}
		defer l.Close()
		intact := int64(0)
		for i, e := range ends {
			if e <= damage {
				intact = int64(i+1) * 3
			}
		}
		end := l.LogEndOffset()
		if end < intact || end > 30 || end%3 != 0 {
			t.Fatalf("log end %d; %d offsets lay before the damage", end, intact)
		}
		next := int64(0)
		for next < end {
			fs, err := l.Read(next, end, 1<<20, true)
			if err != nil || fs.Len == 0 {
				t.Fatalf("read %d: %v (len %d)", next, err, fs.Len)
			}
			raw := make([]byte, fs.Len)
			if _, err := fs.File.ReadAt(raw, fs.Pos); err != nil {
				t.Fatal(err)
			}
			for p := int64(0); p < fs.Len; {
				n := batch.SizeAt(raw[p:])
				if n < 0 || p+n > fs.Len {
					t.Fatalf("served a torn batch at %d", p)
				}
				info, err := batch.Validate(raw[p:p+n], 1<<20)
				if err != nil {
					t.Fatalf("served a corrupt batch: %v", err)
				}
				if info.BaseOffset != next {
					t.Fatalf("batch at %d, want %d", info.BaseOffset, next)
				}
				next = info.LastOffset() + 1
				p += n
			}
		}
		r, err := l.Append(mkBatch(compress.None, 1, "after", 1), 0)
		if err != nil || r.BaseOffset != end {
			t.Fatalf("append after recovery: %+v %v", r, err)
		}
	})
}
