// The one N-API argument reader of the addon. Every entry point checks its arguments cheaply (types,
// lengths, index ranges) so that no kernel can read or write out of bounds; the first failure is kept
// and thrown by finish(): TypeError for a wrong type, RangeError for a size or index out of range,
// the message prefixed by the function's name. Raw N-API: one call per argument (kernels are called
// thousands of times a second).
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace tsf {

struct Call {
  const Napi::CallbackInfo& info;
  const char* fn;
  std::string err;
  bool range = false;
  Call(const Napi::CallbackInfo& i, const char* f) : info(i), fn(f) {}
  bool ok() const { return err.empty(); }
  void type_error(const std::string& m) { if (err.empty()) { err = std::string(fn) + ": " + m; range = false; } }
  void range_error(const std::string& m) { if (err.empty()) { err = std::string(fn) + ": " + m; range = true; } }
  Napi::Value finish() { return finish(info.Env().Undefined()); }
  // result, or undefined with the pending error thrown
  Napi::Value finish(Napi::Value result) {
    if (err.empty()) return result;
    if (range) Napi::RangeError::New(info.Env(), err).ThrowAsJavaScriptException();
    else Napi::TypeError::New(info.Env(), err).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  bool absent(size_t i) const { return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined(); }
  bool flag(size_t i) const { return info[i].ToBoolean(); }
  double num(size_t i, const char* name) {
    if (!ok()) return 0;
    double d = 0;
    if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) { type_error(std::string(name) + " must be a number"); return 0; }
    return d;
  }
  // Data pointer and length of a typed array of the wanted type with at least `need` elements, or
  // nullptr (error set).
  void* typed(size_t i, const char* name, napi_typedarray_type want, const char* tname, double need, size_t* len) {
    if (!ok()) return nullptr;
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok || type != want) {
      type_error(std::string(name) + " must be a" + tname);
      return nullptr;
    }
    if ((double)length < need) { range_error(std::string(name) + " is too short"); return nullptr; }
    if (len) *len = length;
    return data;
  }
  long count(size_t i, const char* name) {
    const double d = num(i, name);
    if (ok() && (!(d >= 0) || d > 9.0e15 || std::floor(d) != d)) type_error(std::string(name) + " must be a non-negative integer");
    return ok() ? (long)d : 0;
  }
  long integer(size_t i, const char* name) {
    const double d = num(i, name);
    if (ok() && (!(std::fabs(d) <= 9.0e15) || std::floor(d) != d)) type_error(std::string(name) + " must be an integer");
    return ok() ? (long)d : 0;
  }
  // A Float32Array with at least `need` elements (len returned in *len when given).
  float* f32(size_t i, const char* name, double need, size_t* len = nullptr) {
    return static_cast<float*>(typed(i, name, napi_float32_array, " Float32Array", need, len));
  }
  float* f32opt(size_t i, const char* name, double need) {
    if (!ok() || absent(i)) return nullptr;
    return f32(i, name, need);
  }
  uint16_t* u16(size_t i, const char* name, double need, size_t* len = nullptr) {
    return static_cast<uint16_t*>(typed(i, name, napi_uint16_array, " Uint16Array", need, len));
  }
  int32_t* i32(size_t i, const char* name, double need, size_t* len = nullptr) {
    return static_cast<int32_t*>(typed(i, name, napi_int32_array, "n Int32Array", need, len));
  }
  const double* f64(size_t i, const char* name, double need, size_t* len = nullptr) {
    return static_cast<const double*>(typed(i, name, napi_float64_array, " Float64Array", need, len));
  }
  // Float32Array pointers of a JS array of ng Float32Arrays, each with at least `need` elements (false,
  // with the error set, otherwise).
  bool f32_list(size_t i, const char* name, long ng, double need, std::vector<float*>& out) {
    if (!ok()) return false;
    if (!info[i].IsArray() || info[i].As<Napi::Array>().Length() != (uint32_t)ng) {
      type_error(std::string(name) + " must be an array of " + std::to_string(ng) + " Float32Arrays");
      return false;
    }
    Napi::Array arr = info[i].As<Napi::Array>();
    out.resize(ng);
    for (long g = 0; g < ng; ++g) {
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      if (napi_get_typedarray_info(info.Env(), arr.Get((uint32_t)g), &type, &length, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
        type_error(std::string(name) + "[" + std::to_string(g) + "] must be a Float32Array");
        return false;
      }
      if ((double)length < need) { range_error(std::string(name) + "[" + std::to_string(g) + "] is too short"); return false; }
      out[g] = static_cast<float*>(data);
    }
    return true;
  }
};

}  // namespace tsf
