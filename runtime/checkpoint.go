package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/smhgen/smhgen/internal/atomicfile"
)

// Checkpoint is what a generated model saves: its weights (parameters,
// normalisation statistics and the constants laid out with them), its
// training step and seed, and its optimizer's state.
//
// On disk, little-endian:
//
//	"SMHGCKPT"                      magic
//	uint32 version                  CheckpointVersion
//	uint64 structure                hash of the model's weight layout
//	uint64 step, uint64 seed
//	uint64 n, n × float32           weights
//	uint32 k, k bytes               optimizer type ("" when none)
//	int64 optimizer step
//	uint32 b, then b × (uint64 len, len × float32)   optimizer buffers
//	uint32 CRC-32 (IEEE) of everything before it
type Checkpoint struct {
	Structure uint64
	Step      uint64
	Seed      uint64
	Weights   []float32
	OptKind   string
	OptStep   int64
	OptState  [][]float32
}

// CheckpointVersion is the format version WriteCheckpoint writes and
// ReadCheckpoint accepts.
const CheckpointVersion = 1

const checkpointMagic = "SMHGCKPT"

// ErrCheckpoint is wrapped by every error about a checkpoint's content.
var ErrCheckpoint = errors.New("bad checkpoint")

// WriteCheckpoint writes c.
func WriteCheckpoint(w io.Writer, c *Checkpoint) error {
	var b bytes.Buffer
	b.WriteString(checkpointMagic)
	u32 := func(v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
	u64 := func(v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
	floats := func(f []float32) {
		u64(uint64(len(f)))
		buf := make([]byte, 4*len(f))
		for i, v := range f {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		b.Write(buf)
	}
	u32(CheckpointVersion)
	u64(c.Structure)
	u64(c.Step)
	u64(c.Seed)
	floats(c.Weights)
	u32(uint32(len(c.OptKind)))
	b.WriteString(c.OptKind)
	u64(uint64(c.OptStep))
	u32(uint32(len(c.OptState)))
	for _, s := range c.OptState {
		floats(s)
	}
	u32(crc32.ChecksumIEEE(b.Bytes()))
	_, err := w.Write(b.Bytes())
	return err
}

// ReadCheckpoint reads a checkpoint for a model whose weight layout hashes
// to structure and holds numWeights values, with optimizer state of at most
// maxState values in all. It reads no more than such a checkpoint can take,
// and checks magic, version, layout, lengths and checksum before returning
// anything, so a caller that applies the result only on success never
// applies a damaged or foreign checkpoint.
func ReadCheckpoint(r io.Reader, structure uint64, numWeights, maxState int) (*Checkpoint, error) {
	limit := int64(len(checkpointMagic)+4+8*4+4*numWeights+4+256+8+4+4) + int64(4+8)*int64(maxState+64) + 4*int64(maxState)
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: larger than this model's checkpoints can be", ErrCheckpoint)
	}
	if len(data) < len(checkpointMagic)+8 || string(data[:len(checkpointMagic)]) != checkpointMagic {
		return nil, fmt.Errorf("%w: not a smhgen checkpoint", ErrCheckpoint)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	d := &decoder{b: body[len(checkpointMagic):]}
	if v := d.u32(); d.err == nil && v != CheckpointVersion {
		return nil, fmt.Errorf("%w: format version %d, this model reads version %d", ErrCheckpoint, v, CheckpointVersion)
	}
	c := &Checkpoint{}
	c.Structure = d.u64()
	if d.err == nil && c.Structure != structure {
		return nil, fmt.Errorf("%w: it was saved by another model (layout %016x, this model's is %016x)", ErrCheckpoint, c.Structure, structure)
	}
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or corrupted)", ErrCheckpoint)
	}
	c.Step, c.Seed = d.u64(), d.u64()
	c.Weights = d.floats(numWeights)
	if d.err == nil && len(c.Weights) != numWeights {
		return nil, fmt.Errorf("%w: %d weights, this model has %d", ErrCheckpoint, len(c.Weights), numWeights)
	}
	if k := d.u32(); d.err == nil {
		if k > 256 {
			return nil, fmt.Errorf("%w: optimizer name of %d bytes", ErrCheckpoint, k)
		}
		c.OptKind = string(d.take(int(k)))
	}
	c.OptStep = int64(d.u64())
	nb := d.u32()
	total := 0
	for i := uint32(0); i < nb && d.err == nil; i++ {
		s := d.floats(maxState - total)
		total += len(s)
		c.OptState = append(c.OptState, s)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes of trailing data", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, d.err)
	}
	return c, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errors.New("truncated")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// floats reads a length-prefixed float32 slice of at most limit values.
func (d *decoder) floats(limit int) []float32 {
	n := d.u64()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)/4) {
		d.err = fmt.Errorf("a block of %d values exceeds what remains", n)
		return nil
	}
	b := d.take(4 * int(n))
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// WriteFileAtomic writes a file through write so that path holds either its
// old content or the complete new one, never a part, even if the process
// dies mid-write: the data goes to a temporary file in the same directory,
// is synced, and is renamed over path. The file gets mode 0644.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	return atomicfile.Write(path, 0o644, write)
}
