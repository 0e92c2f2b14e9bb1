package streams

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Defaults sets every field of the struct spec points to that has a
// `default:"..."` tag (fields of embedded structs too) to that value, as
// envconfig does when the variable is unset. The tags are where a
// setting's default is written, once: the environment, the -h listings
// and Go code that needs a default (DefaultLimits, a zero Option) all read
// them. It panics on a tag it cannot parse, which TestDefaults of each
// package would catch.
func Defaults(spec any) {
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("streams.Defaults: %T is not a pointer to a struct", spec))
	}
	setDefaults(v.Elem())
}

var durationType = reflect.TypeOf(time.Duration(0))

func setDefaults(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			setDefaults(fv)
			continue
		}
		def, ok := f.Tag.Lookup("default")
		if !ok || !f.IsExported() {
			continue
		}
		if err := setField(fv, def); err != nil {
			panic(fmt.Sprintf("streams.Defaults: %s.%s: default %q: %v", t.Name(), f.Name, def, err))
		}
	}
}

func setField(fv reflect.Value, def string) error {
	if fv.Type() == durationType {
		d, err := time.ParseDuration(def)
		fv.SetInt(int64(d))
		return err
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(def)
	case reflect.Bool:
		b, err := strconv.ParseBool(def)
		fv.SetBool(b)
		return err
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(def, 0, fv.Type().Bits())
		fv.SetInt(n)
		return err
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(def, fv.Type().Bits())
		fv.SetFloat(x)
		return err
	case reflect.Slice:
		if fv.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %s", fv.Type())
		}
		var parts []string
		if def != "" {
			parts = strings.Split(def, ",")
		}
		fv.Set(reflect.ValueOf(parts).Convert(fv.Type()))
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}
