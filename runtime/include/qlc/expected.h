// qlc's public error values: every failure of the runtime API is returned as a qlc::Error carried
// by a qlc::Expected<T>, never thrown and never an abort. Self-contained (standard library only).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace qlc {

/// What went wrong: a one-line message (`<file>: <what>`, or `file:line:col: error: ...` for IR
/// errors) and, when there is more to show, the full diagnostics (every error with its source line
/// and caret, in the order they were found).
class Error {
public:
  Error() = default;
  explicit Error(std::string message, std::string diagnostics = "")
      : message_(std::move(message)), diagnostics_(std::move(diagnostics)) {}
  const std::string &message() const { return message_; }
  /// The full diagnostic text (may be empty; then message() is all there is).
  const std::string &diagnostics() const { return diagnostics_; }
  /// diagnostics() followed by message(): what a tool prints.
  std::string str() const {
    return diagnostics_.empty() ? message_ : diagnostics_ + (diagnostics_.back() == '\n' ? "" : "\n") + message_;
  }

private:
  std::string message_;
  std::string diagnostics_;
};

/// A T or the Error that prevented it. Test with `if (!e)`, read with `*e` / `e->`; reading the
/// value of an error is a programmer error (it prints the error and aborts).
template <class T> class [[nodiscard]] Expected {
public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error error) : v_(std::move(error)) {}

  explicit operator bool() const { return v_.index() == 0; }
  bool has_value() const { return v_.index() == 0; }

  T &value() & { check(); return std::get<0>(v_); }
  const T &value() const & { check(); return std::get<0>(v_); }
  T &&value() && { check(); return std::get<0>(std::move(v_)); }
  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  T &&operator*() && { return std::move(*this).value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }

  /// The error (only when !has_value()).
  const Error &error() const {
    if (has_value()) {
      std::fputs("qlc::Expected::error() called on a value\n", stderr);
      std::abort();
    }
    return std::get<1>(v_);
  }

private:
  void check() const {
    if (!has_value()) {
      std::fprintf(stderr, "qlc::Expected: value of an error: %s\n", std::get<1>(v_).message().c_str());
      std::abort();
    }
  }
  std::variant<T, Error> v_;
};

/// Success or an Error, for operations with no result (Program::save).
template <> class [[nodiscard]] Expected<void> {
public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), failed_(true) {}
  explicit operator bool() const { return !failed_; }
  bool has_value() const { return !failed_; }
  const Error &error() const { return error_; }

private:
  Error error_;
  bool failed_ = false;
};

} // namespace qlc
