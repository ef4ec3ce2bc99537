package passes

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smhgen/smhgen/ir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the expected outputs in testdata")

var allPasses = map[string]*Pass{}

func init() {
	for _, p := range append(Inference(), Training()...) {
		allPasses[p.Name] = p
	}
}

// TestPasses runs each testdata/<pass>/*.txtar: the "in" graph through that
// one pass, compared with "out" (or with the message in "error"). The
// archive comment may hold "training" to set Context.Training.
func TestPasses(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.txtar"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		passName := filepath.Base(filepath.Dir(file))
		t.Run(passName+"/"+strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			p := allPasses[passName]
			require.NotNil(t, p, "no pass named %q", passName)
			ar, err := txtar.ParseFile(file)
			require.NoError(t, err)
			sections := map[string]string{}
			for _, f := range ar.Files {
				sections[f.Name] = string(f.Data)
			}
			g, err := ir.Parse(sections["in"])
			require.NoError(t, err)
			c := &Context{Training: strings.Contains(string(ar.Comment), "training"), SMH: smhFromComment(t, string(ar.Comment))}
			pl, err := NewPipeline(&Pass{Name: p.Name, Stage: p.Stage, Run: p.Run})
			require.NoError(t, err)
			err = pl.Run(g, c, "")
			got, gotName := "", "out"
			if err != nil {
				got, gotName = err.Error()+"\n", "error"
			} else {
				got = ir.Format(g)
			}
			if *update {
				var files []txtar.File
				for _, f := range ar.Files {
					if f.Name == "in" {
						files = append(files, f)
					}
				}
				files = append(files, txtar.File{Name: gotName, Data: []byte(got)})
				ar.Files = files
				require.NoError(t, os.WriteFile(file, txtar.Format(ar), 0o644))
				return
			}
			want, ok := sections[gotName]
			if !ok {
				t.Fatalf("pass gave %s:\n%s\nbut the archive has no %q section", gotName, got, gotName)
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestPipelineChecksOrder(t *testing.T) {
	_, err := NewPipeline(Fold, Cleanup)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `pass "fold" must run after "cleanup"`)
	_, err = NewPipeline(Cleanup, Cleanup)
	assert.ErrorContains(t, err, "appears twice")
	pl, err := NewPipeline(Inference()...)
	require.NoError(t, err)
	assert.Equal(t, []string{"cleanup", "fold", "simplify", "bnfold", "smh", "fuse", "dce", "smh-prefetch", "plan"}, pl.Names())
	g, err := ir.Parse("graph \"g\" opset=14\ninput v0:f32[N,2] \"x\"\nv1:? = Relu v0\noutput v1 \"y\"\n")
	require.NoError(t, err)
	err = pl.Run(g, &Context{Disabled: map[string]bool{"cleanup": true}}, "")
	assert.ErrorContains(t, err, `pass "cleanup" cannot be disabled: "fold" needs it`)
	err = pl.Run(g, nil, "nosuch")
	assert.ErrorContains(t, err, `no pass named "nosuch"`)
}

// TestPipelineNamesFailingPass checks that a pass's error, a pass's panic
// and a pass that leaves an invalid graph are all reported with its name.
func TestPipelineNamesFailingPass(t *testing.T) {
	text := "graph \"g\" opset=14\ninput v0:f32[N,2] \"x\"\nv1:f32[N,2] = Relu v0\noutput v1 \"y\"\n"
	for _, c := range []struct {
		run  func(g *ir.Graph, c *Context) error
		want string
	}{
		{func(*ir.Graph, *Context) error { return os.ErrInvalid }, "pass broken: invalid argument"},
		{func(*ir.Graph, *Context) error { panic("boom") }, "pass broken: internal error: boom"},
		{func(g *ir.Graph, _ *Context) error { g.Nodes[0].Results[0].Type = ir.Of(ir.F32, 3); return nil }, "after pass broken, the graph is invalid"},
	} {
		g, err := ir.Parse(text)
		require.NoError(t, err)
		pl, err := NewPipeline(&Pass{Name: "broken", Stage: ir.StageTyped, Run: c.run})
		require.NoError(t, err)
		assert.ErrorContains(t, pl.Run(g, nil, ""), c.want)
	}
}

// smhFromComment reads an "smh: key=value ..." line of an archive comment
// into an SMH configuration (variant, fraction, params, conv, cached).
func smhFromComment(t *testing.T, comment string) *SMHConfig {
	for _, line := range strings.Split(comment, "\n") {
		rest, ok := strings.CutPrefix(line, "smh:")
		if !ok {
			continue
		}
		cfg := &SMHConfig{Variant: "product", Seed: 1}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "variant":
				cfg.Variant = v
			case "fraction":
				cfg.Fraction, err = strconv.ParseFloat(v, 64)
			case "params":
				cfg.Params, err = strconv.Atoi(v)
			case "conv":
				cfg.ConvOnly = true
			case "cached":
				cfg.Cached = true
			default:
				t.Fatalf("unknown smh key %q", k)
			}
			require.NoError(t, err)
		}
		return cfg
	}
	return nil
}
