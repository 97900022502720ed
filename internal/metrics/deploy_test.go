package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The example monitoring files shipped in deploy/ name metrics by text.
// These tests keep them from drifting from the code: every modproxy_*
// name they use must be a metric that New registers.

// deployFiles are the shipped files that name metrics, relative to the
// repository root.
var deployFiles = []string{
	"deploy/prometheus/alerts.yml",
	"deploy/prometheus/alerts_test.yml",
	"deploy/grafana/modproxy-dashboard.json",
}

const deployDashboardFile = "deploy/grafana/modproxy-dashboard.json"

var deployMetricNameRE = regexp.MustCompile(`modproxy_[a-z_]+`)

// deployRegisteredFamilies returns the metric families of a new Metrics
// after every method was called once with dummy arguments (and every
// Timer it returned observed once), so that every vector has a child and
// appears in Gather. Families map to their type's name (COUNTER, GAUGE,
// HISTOGRAM, ...). Methods are found by reflection: a recording method
// added later is covered without changing this test.
func deployRegisteredFamilies(t *testing.T) map[string]string {
	t.Helper()
	m := New()
	v := reflect.ValueOf(m)
	for i := range v.NumMethod() {
		meth := v.Type().Method(i)
		args := make([]reflect.Value, 0, meth.Type.NumIn()-1)
		for j := 1; j < meth.Type.NumIn(); j++ {
			arg, ok := deployDummyArg(meth.Type.In(j))
			if !ok {
				t.Fatalf("Metrics.%s: no dummy value for parameter type %s; teach deployDummyArg about it", meth.Name, meth.Type.In(j))
			}
			args = append(args, arg)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Metrics.%s panics (is its metric created in New?): %v", meth.Name, r)
				}
			}()
			for _, out := range v.Method(i).Call(args) {
				if tm, ok := out.Interface().(Timer); ok {
					tm.Observe(time.Millisecond)
				}
			}
		}()
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	fams := make(map[string]string, len(mfs))
	for _, mf := range mfs {
		fams[mf.GetName()] = mf.GetType().String() // COUNTER, GAUGE, HISTOGRAM, ...
	}
	return fams
}

func deployDummyArg(typ reflect.Type) (reflect.Value, bool) {
	if typ == reflect.TypeFor[time.Duration]() {
		return reflect.ValueOf(time.Second), true
	}
	switch typ.Kind() {
	case reflect.Slice:
		elem, ok := deployDummyArg(typ.Elem())
		if !ok {
			return reflect.Value{}, false
		}
		s := reflect.MakeSlice(typ, 1, 1)
		s.Index(0).Set(elem)
		return s, true
	case reflect.Func:
		return reflect.MakeFunc(typ, func([]reflect.Value) []reflect.Value {
			out := make([]reflect.Value, typ.NumOut())
			for i := range out {
				out[i] = reflect.Zero(typ.Out(i))
			}
			return out
		}), true
	case reflect.String:
		return reflect.ValueOf("test").Convert(typ), true
	case reflect.Bool:
		return reflect.ValueOf(true).Convert(typ), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return reflect.ValueOf(1).Convert(typ), true
	}
	return reflect.Value{}, false
}

// deployKnownSeries reports whether name, as written in a query, is a
// series name of a registered family: the family name itself, or a
// histogram's or summary's _bucket/_sum/_count series.
func deployKnownSeries(fams map[string]string, name string) bool {
	if _, ok := fams[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch fams[base] {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			return true
		case "SUMMARY":
			if suffix != "_bucket" {
				return true
			}
		}
	}
	return false
}

func readDeployFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("reading the shipped file: %v", err)
	}
	return b
}

func TestDeployFilesUseRegisteredMetrics(t *testing.T) {
	fams := deployRegisteredFamilies(t)
	var modproxyFams int
	for name := range fams {
		if strings.HasPrefix(name, "modproxy_") {
			modproxyFams++
		}
	}
	if modproxyFams < 10 {
		t.Fatalf("only %d modproxy_ families gathered after touching every recorder: %v", modproxyFams, fams)
	}
	for _, rel := range deployFiles {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			names := deployMetricNameRE.FindAllString(string(readDeployFile(t, rel)), -1)
			seen := map[string]bool{}
			for _, n := range names {
				seen[n] = true
			}
			if len(seen) < 3 {
				t.Fatalf("%s names only %d modproxy metrics (%v): is the pattern or the file wrong?", rel, len(seen), names)
			}
			var unknown []string
			for n := range seen {
				if !deployKnownSeries(fams, n) {
					unknown = append(unknown, n)
				}
			}
			sort.Strings(unknown)
			if len(unknown) > 0 {
				var reg []string
				for n := range fams {
					if strings.HasPrefix(n, "modproxy_") {
						reg = append(reg, n)
					}
				}
				sort.Strings(reg)
				t.Errorf("%s uses metrics that internal/metrics does not register: %s\nregistered: %s",
					rel, strings.Join(unknown, ", "), strings.Join(reg, ", "))
			}
		})
	}
}

// TestDashboardJSON checks that the Grafana dashboard parses and that every
// panel queries through the datasource variable, so the dashboard imports
// on any Grafana without editing.
func TestDashboardJSON(t *testing.T) {
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []deployDashPanel `json:"panels"`
	}
	if err := json.Unmarshal(readDeployFile(t, deployDashboardFile), &dash); err != nil {
		t.Fatalf("%s does not parse: %v", deployDashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q, uid %q: both must be set", dash.Title, dash.UID)
	}
	var dsVar bool
	for _, v := range dash.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = true
		}
	}
	if !dsVar {
		t.Errorf("no Prometheus datasource variable named \"datasource\" in templating")
	}
	var panels []deployDashPanel
	for _, p := range dash.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...) // panels of collapsed rows
	}
	ids := map[int]string{}
	var queried int
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
			continue
		}
		queried++
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource uid %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource uid %q, want ${datasource}", p.Title, q.RefID, q.Datasource.UID)
			}
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q query %s: empty expression", p.Title, q.RefID)
			}
		}
	}
	if queried < 10 {
		t.Errorf("only %d panels with queries", queried)
	}
}

type deployDashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []deployDashPanel `json:"panels"`
}
