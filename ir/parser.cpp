#include "ir/parser.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/op_registry.h"

namespace qlc {
namespace {

//===----------------------------------------------------------------------===//
// Lexer
//===----------------------------------------------------------------------===//

enum class Tok {
  Eof, Error, Ident, ValueId, Symbol, Mnemonic, Integer, Float, String, HexString,
  LParen, RParen, LBrace, RBrace, LSquare, RSquare, Less, Greater, Comma, Colon, Equal, Arrow,
  Question
};

struct Token {
  Tok kind = Tok::Eof;
  const char *begin = nullptr;
  const char *end = nullptr;
  bool newlineBefore = false; // a line break between the previous token and this one
  std::string text;           // identifier / name / decoded string contents

  llvm::StringRef spelling() const { return llvm::StringRef(begin, end - begin); }
};

bool isIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$';
}
bool isNameChar(char c) { return isIdentChar(c) || c == '-'; }

class Lexer {
public:
  Lexer(llvm::StringRef buf) : start_(buf.begin()), cur_(buf.begin()), end_(buf.end()) {}

  Token next() {
    Token t;
    t.newlineBefore = skipSpace();
    t.begin = cur_;
    if (cur_ == end_) {
      t.kind = Tok::Eof;
      t.end = cur_;
      return t;
    }
    char c = *cur_;
    auto single = [&](Tok k) {
      ++cur_;
      t.kind = k;
      t.end = cur_;
      return t;
    };
    switch (c) {
    case '(': return single(Tok::LParen);
    case ')': return single(Tok::RParen);
    case '{': return single(Tok::LBrace);
    case '}': return single(Tok::RBrace);
    case '[': return single(Tok::LSquare);
    case ']': return single(Tok::RSquare);
    case '<': return single(Tok::Less);
    case '>': return single(Tok::Greater);
    case ',': return single(Tok::Comma);
    case ':': return single(Tok::Colon);
    case '=': return single(Tok::Equal);
    case '?': return single(Tok::Question);
    case '"': return lexString(t);
    case '%': case '@': case '!': return lexName(t, c);
    default: break;
    }
    if (c == '-' && cur_ + 1 < end_ && cur_[1] == '>') {
      cur_ += 2;
      t.kind = Tok::Arrow;
      t.end = cur_;
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && cur_ + 1 < end_ && std::isdigit(static_cast<unsigned char>(cur_[1]))))
      return lexNumber(t);
    if (c == '-' && llvm::StringRef(cur_, end_ - cur_).starts_with("-inf")) {
      cur_ += 4;
      t.kind = Tok::Float;
      t.end = cur_;
      return t;
    }
    if (isIdentStart(c)) {
      while (cur_ < end_ && isIdentChar(*cur_))
        ++cur_;
      t.end = cur_;
      t.text = std::string(t.begin, cur_);
      if (t.text == "hex" && cur_ < end_ && *cur_ == '"') {
        Token s = lexString(t);
        if (s.kind == Tok::Error)
          return s;
        s.kind = Tok::HexString;
        return s;
      }
      t.kind = Tok::Ident;
      return t;
    }
    ++cur_;
    t.kind = Tok::Error;
    t.end = cur_;
    static const char hex[] = "0123456789ABCDEF";
    unsigned char u = static_cast<unsigned char>(c);
    t.text = std::string("unexpected character '") +
             (std::isprint(u) ? std::string(1, c)
                              : std::string("\\x") + hex[u >> 4] + hex[u & 15]) +
             "'";
    return t;
  }

  const char *pos() const { return cur_; }
  void reset(const char *p) { cur_ = p; }

  /// Reads the body of `tensor<...>` up to (not including) '>' as raw text; the dims use 'x' as a
  /// separator, which the token lexer would read as part of identifiers.
  llvm::StringRef lexRawUntilGreater() {
    const char *b = cur_;
    while (cur_ < end_ && *cur_ != '>' && *cur_ != '\n')
      ++cur_;
    return llvm::StringRef(b, cur_ - b);
  }

private:
  bool skipSpace() {
    bool nl = false;
    while (cur_ < end_) {
      char c = *cur_;
      if (c == '\n') {
        nl = true;
        ++cur_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++cur_;
      } else if (c == '/' && cur_ + 1 < end_ && cur_[1] == '/') {
        while (cur_ < end_ && *cur_ != '\n')
          ++cur_;
      } else {
        break;
      }
    }
    return nl;
  }

  Token lexString(Token &t) {
    ++cur_; // opening quote
    std::string s;
    while (true) {
      if (cur_ == end_ || *cur_ == '\n') {
        t.kind = Tok::Error;
        t.end = cur_;
        t.text = "unterminated string";
        return t;
      }
      char c = *cur_++;
      if (c == '"')
        break;
      if (c != '\\') {
        s += c;
        continue;
      }
      if (cur_ == end_) {
        t.kind = Tok::Error;
        t.end = cur_;
        t.text = "unterminated string";
        return t;
      }
      char e = *cur_++;
      if (e == '"' || e == '\\') {
        s += e;
      } else if (e == 'n') {
        s += '\n';
      } else if (e == 't') {
        s += '\t';
      } else if (std::isxdigit(static_cast<unsigned char>(e)) && cur_ < end_ &&
                 std::isxdigit(static_cast<unsigned char>(*cur_))) {
        s += char(std::stoi(std::string{e, *cur_}, nullptr, 16));
        ++cur_;
      } else {
        t.kind = Tok::Error;
        t.end = cur_;
        t.text = std::string("unknown escape '\\") + e + "' in string";
        return t;
      }
    }
    t.kind = Tok::String;
    t.end = cur_;
    t.text = std::move(s);
    return t;
  }

  Token lexName(Token &t, char sigil) {
    ++cur_;
    t.kind = sigil == '%' ? Tok::ValueId : sigil == '@' ? Tok::Symbol : Tok::Mnemonic;
    if (sigil == '@' && cur_ < end_ && *cur_ == '"') {
      Token s = lexString(t);
      if (s.kind == Tok::Error)
        return s;
      s.kind = Tok::Symbol;
      return s;
    }
    const char *b = cur_;
    while (cur_ < end_ && (sigil == '!' ? isIdentChar(*cur_) : isNameChar(*cur_)))
      ++cur_;
    t.end = cur_;
    t.text = std::string(b, cur_);
    if (t.text.empty()) {
      t.kind = Tok::Error;
      t.text = std::string("expected a name after '") + sigil + "'";
    }
    return t;
  }

  Token lexNumber(Token &t) {
    if (*cur_ == '-')
      ++cur_;
    bool isFloat = false;
    while (cur_ < end_ && std::isdigit(static_cast<unsigned char>(*cur_)))
      ++cur_;
    if (cur_ < end_ && *cur_ == '.' ) {
      isFloat = true;
      ++cur_;
      while (cur_ < end_ && std::isdigit(static_cast<unsigned char>(*cur_)))
        ++cur_;
    }
    if (cur_ < end_ && (*cur_ == 'e' || *cur_ == 'E')) {
      const char *save = cur_;
      ++cur_;
      if (cur_ < end_ && (*cur_ == '+' || *cur_ == '-'))
        ++cur_;
      if (cur_ < end_ && std::isdigit(static_cast<unsigned char>(*cur_))) {
        isFloat = true;
        while (cur_ < end_ && std::isdigit(static_cast<unsigned char>(*cur_)))
          ++cur_;
      } else {
        cur_ = save;
      }
    }
    t.kind = isFloat ? Tok::Float : Tok::Integer;
    t.end = cur_;
    return t;
  }

  const char *start_;
  const char *cur_;
  const char *end_;
};

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

struct PendingBody {
  Function *func;
  const char *bodyStart; // just after '{'
  std::map<std::string, Value *> args;
};

class Parser {
public:
  Parser(llvm::SourceMgr &sm, unsigned bufId, DiagnosticEngine &diag)
      : sm_(sm), bufId_(bufId), diag_(diag),
        lex_(sm.getMemoryBuffer(bufId)->getBuffer()),
        file_(sm.getMemoryBuffer(bufId)->getBufferIdentifier().str()) {
    registerCoreOps();
    consume();
  }

  std::unique_ptr<Module> parse() {
    module_ = std::make_unique<Module>();
    if (tok_.kind == Tok::Ident && tok_.text == "module") {
      consume();
      if (!expectKeyword("attributes") || !parseAttrDict(module_->attrs()))
        return nullptr;
    }
    while (tok_.kind != Tok::Eof) {
      if (tok_.kind == Tok::Ident && tok_.text == "weight") {
        if (!parseWeight())
          return nullptr;
      } else if (tok_.kind == Tok::Ident && tok_.text == "func") {
        if (!parseFunctionHeader())
          return nullptr;
      } else {
        return error("expected 'weight' or 'func' at top level"), nullptr;
      }
    }
    // Function bodies are parsed once every weight symbol is known, so ops may name weights that
    // are declared further down the file.
    for (PendingBody &b : bodies_) {
      lex_.reset(b.bodyStart);
      consume();
      if (!parseBody(b))
        return nullptr;
    }
    return std::move(module_);
  }

private:
  //===--- token helpers ---===//
  void consume() { tok_ = lex_.next(); }

  Location locOf(const char *p) const {
    auto [line, col] = sm_.getLineAndColumn(llvm::SMLoc::getFromPointer(p), bufId_);
    return Location{file_, line, col};
  }

  bool error(const char *at, std::string msg) {
    diag_.error(locOf(at), std::move(msg));
    return false;
  }
  bool error(std::string msg) {
    if (tok_.kind == Tok::Error)
      return error(tok_.begin, tok_.text);
    return error(tok_.begin, std::move(msg));
  }

  std::string describe(const Token &t) const {
    if (t.kind == Tok::Eof)
      return "end of file";
    return "'" + t.spelling().str() + "'";
  }

  bool expect(Tok k, const char *what) {
    if (tok_.kind != k)
      return error(std::string("expected ") + what + ", got " + describe(tok_));
    consume();
    return true;
  }

  bool expectKeyword(const char *kw) {
    if (tok_.kind != Tok::Ident || tok_.text != kw)
      return error(std::string("expected '") + kw + "', got " + describe(tok_));
    consume();
    return true;
  }

  //===--- types ---===//

  /// tensor<4x?x8xf32>: called with tok_ on 'tensor'.
  bool parseTensorType(TensorType &out) {
    const char *start = tok_.begin;
    if (tok_.kind != Tok::Ident || tok_.text != "tensor")
      return error("expected a tensor type, got " + describe(tok_));
    // The '<' must follow directly; read the body raw (dims are 'x'-separated).
    const char *p = lex_.pos();
    if (*p != '<')
      return error(p, "expected '<' after 'tensor'");
    lex_.reset(p + 1);
    const char *bodyBegin = lex_.pos();
    llvm::StringRef body = lex_.lexRawUntilGreater();
    if (*lex_.pos() != '>')
      return error(start, "unterminated tensor type (missing '>')");
    lex_.reset(lex_.pos() + 1);
    consume();
    llvm::SmallVector<llvm::StringRef> pieces;
    body.split(pieces, 'x');
    const char *cursor = bodyBegin;
    out.dims.clear();
    for (size_t i = 0; i < pieces.size(); ++i) {
      llvm::StringRef piece = pieces[i].trim();
      const char *at = cursor;
      cursor += pieces[i].size() + 1;
      if (i + 1 == pieces.size()) {
        auto e = parseElemKind(piece);
        if (!e)
          return error(at, "unknown element type '" + piece.str() +
                               "' (expected f32, f16, bf16, i8, u8, i32 or i64)");
        out.elem = *e;
        break;
      }
      if (piece == "?") {
        out.dims.push_back(TensorType::kDynamic);
        continue;
      }
      int64_t d;
      if (piece.getAsInteger(10, d) || d < 0)
        return error(at, "expected a non-negative dimension or '?', got '" + piece.str() + "'");
      out.dims.push_back(d);
    }
    if (!out.numElements() && out.isStatic())
      return error(start, "tensor type " + out.str() + " has more elements than fit in 64 bits");
    return true;
  }

  //===--- attributes ---===//

  bool parseAttrValue(Attribute &out) {
    switch (tok_.kind) {
    case Tok::Integer: {
      int64_t v;
      if (tok_.spelling().getAsInteger(10, v))
        return error("integer out of range: " + tok_.spelling().str());
      out = Attribute(v);
      consume();
      return true;
    }
    case Tok::Float: {
      double v;
      llvm::StringRef s = tok_.spelling();
      if (s == "-inf")
        v = -std::numeric_limits<double>::infinity();
      else if (s.getAsDouble(v))
        return error("malformed float: " + s.str());
      if (std::isinf(v) && s != "-inf")
        return error("float " + s.str() + " is out of range (write inf for infinity)");
      out = Attribute(v);
      consume();
      return true;
    }
    case Tok::String:
      out = Attribute(tok_.text);
      consume();
      return true;
    case Tok::LSquare: {
      consume();
      std::vector<int64_t> vals;
      if (tok_.kind != Tok::RSquare) {
        while (true) {
          int64_t v;
          if (tok_.kind != Tok::Integer || tok_.spelling().getAsInteger(10, v))
            return error("expected an integer in the list, got " + describe(tok_));
          vals.push_back(v);
          consume();
          if (tok_.kind != Tok::Comma)
            break;
          consume();
        }
      }
      if (!expect(Tok::RSquare, "']' to close the list"))
        return false;
      out = Attribute(std::move(vals));
      return true;
    }
    case Tok::Ident: {
      if (tok_.text == "true" || tok_.text == "false") {
        out = Attribute(tok_.text == "true");
        consume();
        return true;
      }
      if (tok_.text == "inf" || tok_.text == "nan") {
        out = Attribute(tok_.text == "inf" ? std::numeric_limits<double>::infinity()
                                           : std::numeric_limits<double>::quiet_NaN());
        consume();
        return true;
      }
      if (tok_.text == "tensor") {
        TensorType t;
        if (!parseTensorType(t))
          return false;
        out = Attribute(std::move(t));
        return true;
      }
      out = Attribute::ident(tok_.text);
      consume();
      return true;
    }
    default:
      return error("expected an attribute value, got " + describe(tok_));
    }
  }

  /// `key = value` entries separated by ',' until `close`.
  bool parseKeyValues(AttrDict &out, Tok close, const char *closeWhat) {
    if (tok_.kind != close) {
      while (true) {
        if (tok_.kind != Tok::Ident)
          return error("expected an attribute name, got " + describe(tok_));
        std::string key = tok_.text;
        const char *keyAt = tok_.begin;
        consume();
        if (!expect(Tok::Equal, "'=' after the attribute name"))
          return false;
        Attribute v;
        if (!parseAttrValue(v))
          return false;
        if (!out.emplace(key, std::move(v)).second)
          return error(keyAt, "duplicate attribute '" + key + "'");
        if (tok_.kind != Tok::Comma)
          break;
        consume();
      }
    }
    return expect(close, closeWhat);
  }

  bool parseAttrDict(AttrDict &out) {
    if (!expect(Tok::LBrace, "'{'"))
      return false;
    return parseKeyValues(out, Tok::RBrace, "'}' to close the attributes");
  }

  /// Optional `loc("file":line:col)`.
  bool parseOptionalLoc(Location &loc) {
    if (tok_.kind != Tok::Ident || tok_.text != "loc")
      return true;
    consume();
    if (!expect(Tok::LParen, "'(' after 'loc'"))
      return false;
    if (tok_.kind != Tok::String)
      return error("expected a file name string in loc(...)");
    Location l;
    l.file = tok_.text;
    consume();
    int64_t line, col;
    if (!expect(Tok::Colon, "':' after the file name"))
      return false;
    if (tok_.kind != Tok::Integer || tok_.spelling().getAsInteger(10, line) || line < 0 ||
        line > int64_t(UINT32_MAX))
      return error("expected a line number in [0, 4294967295]");
    consume();
    if (!expect(Tok::Colon, "':' after the line number"))
      return false;
    if (tok_.kind != Tok::Integer || tok_.spelling().getAsInteger(10, col) || col < 0 ||
        col > int64_t(UINT32_MAX))
      return error("expected a column number in [0, 4294967295]");
    consume();
    if (!expect(Tok::RParen, "')' to close loc(...)"))
      return false;
    l.line = unsigned(line);
    l.col = unsigned(col);
    loc = std::move(l);
    return true;
  }

  //===--- weights ---===//

  bool parseWeightType(WeightSymbolType &out) {
    if (tok_.kind == Tok::Ident && tok_.text == "tensor") {
      TensorType t;
      if (!parseTensorType(t))
        return false;
      out = t;
      return true;
    }
    if (tok_.kind != Tok::Mnemonic)
      return error("expected a weight type (tensor<...> or !scheme<...>), got " + describe(tok_));
    const char *at = tok_.begin;
    std::string mnemonic = tok_.text;
    const WeightTypeDef *def = WeightTypeRegistry::get().lookup(mnemonic);
    if (!def) {
      std::string known;
      for (const WeightTypeDef *d : WeightTypeRegistry::get().all())
        known += (known.empty() ? "!" : ", !") + d->mnemonic;
      return error(at, "unknown weight type '!" + mnemonic + "'" +
                           (known.empty() ? std::string(" (no scheme is registered)")
                                          : " (registered: " + known + ")"));
    }
    consume();
    if (!expect(Tok::Less, "'<' after the weight type name"))
      return false;
    AttrDict params;
    if (!parseKeyValues(params, Tok::Greater, "'>' to close the weight type"))
      return false;
    std::string err;
    auto t = WeightTypeRegistry::get().build(def, params, err);
    if (!t)
      return error(at, err);
    out = std::move(*t);
    return true;
  }

  bool parseHex(const Token &t, std::vector<uint8_t> &out) {
    const std::string &s = t.text;
    if (s.size() % 2)
      return error(t.begin, "hex data has an odd number of digits (" + std::to_string(s.size()) + ")");
    out.resize(s.size() / 2);
    for (size_t i = 0; i < s.size(); ++i) {
      char c = s[i];
      int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                      ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                      ? c - 'A' + 10
                                                            : -1;
      if (v < 0)
        return error(t.begin, std::string("invalid hex digit '") + c + "' in hex data");
      out[i / 2] = uint8_t(out[i / 2] << 4 | v);
    }
    return true;
  }

  bool parseWeight() {
    const char *at = tok_.begin;
    consume(); // 'weight'
    if (tok_.kind != Tok::Symbol)
      return error("expected a weight name '@name', got " + describe(tok_));
    std::string name = tok_.text;
    const char *nameAt = tok_.begin;
    consume();
    if (!expect(Tok::Colon, "':' after the weight name"))
      return false;
    WeightSymbolType type;
    if (!parseWeightType(type))
      return false;
    Location loc = locOf(at);
    if (!parseOptionalLoc(loc))
      return false;
    auto w = std::make_unique<Weight>(name, std::move(type), loc);
    if (!expect(Tok::LBrace, "'{' to start the weight parts"))
      return false;
    if (tok_.kind != Tok::RBrace) {
      while (true) {
        if (tok_.kind != Tok::Ident)
          return error("expected a part name, got " + describe(tok_));
        WeightPart p;
        p.name = tok_.text;
        p.loc = locOf(tok_.begin);
        if (w->part(p.name))
          return error("duplicate part '" + p.name + "' in weight @" + name);
        consume();
        if (!expect(Tok::Equal, "'=' after the part name"))
          return false;
        if (!parseTensorType(p.type))
          return false;
        if (tok_.kind == Tok::Ident && tok_.text == "from") {
          consume();
          if (tok_.kind == Tok::LSquare) {
            consume();
            while (true) {
              if (tok_.kind != Tok::String)
                return error("expected a checkpoint tensor name string in the list");
              p.sources.push_back(tok_.text);
              consume();
              if (tok_.kind != Tok::Comma)
                break;
              consume();
            }
            if (!expect(Tok::RSquare, "']' to close the tensor list"))
              return false;
          } else if (tok_.kind == Tok::String) {
            p.sources.push_back(tok_.text);
            consume();
          } else {
            return error("expected the checkpoint tensor name as a string after 'from'");
          }
        } else if (tok_.kind == Tok::Equal) {
          consume();
          if (tok_.kind != Tok::HexString)
            return error("expected hex\"...\" data after '='");
          auto bytes = std::make_shared<std::vector<uint8_t>>();
          if (!parseHex(tok_, *bytes))
            return false;
          p.data = std::move(bytes);
          consume();
        } else {
          return error("expected 'from \"tensor\"' or '= hex\"...\"' for part '" + p.name +
                       "', got " + describe(tok_));
        }
        w->parts().push_back(std::move(p));
        if (tok_.kind != Tok::Comma)
          break;
        consume();
      }
    }
    if (!expect(Tok::RBrace, "'}' to close the weight parts"))
      return false;
    if (!module_->addWeight(std::move(w)))
      return error(nameAt, "redefinition of weight @" + name);
    return true;
  }

  //===--- functions ---===//

  bool parseFunctionHeader() {
    const char *at = tok_.begin;
    consume(); // 'func'
    if (tok_.kind != Tok::Symbol)
      return error("expected a function name '@name', got " + describe(tok_));
    std::string name = tok_.text;
    const char *nameAt = tok_.begin;
    consume();
    std::vector<std::pair<std::string, TensorType>> args;
    if (!expect(Tok::LParen, "'(' to start the arguments"))
      return false;
    if (tok_.kind != Tok::RParen) {
      while (true) {
        if (tok_.kind != Tok::ValueId)
          return error("expected an argument '%name', got " + describe(tok_));
        std::string an = tok_.text;
        const char *anAt = tok_.begin;
        consume();
        if (!expect(Tok::Colon, "':' after the argument name"))
          return false;
        TensorType t;
        if (!parseTensorType(t))
          return false;
        for (const auto &a : args)
          if (a.first == an)
            return error(anAt, "redefinition of argument %" + an);
        args.push_back({an, t});
        if (tok_.kind != Tok::Comma)
          break;
        consume();
      }
    }
    if (!expect(Tok::RParen, "')' to close the arguments"))
      return false;
    std::vector<TensorType> results;
    if (tok_.kind == Tok::Arrow) {
      consume();
      if (tok_.kind == Tok::LParen) {
        consume();
        if (tok_.kind != Tok::RParen) {
          while (true) {
            TensorType t;
            if (!parseTensorType(t))
              return false;
            results.push_back(t);
            if (tok_.kind != Tok::Comma)
              break;
            consume();
          }
        }
        if (!expect(Tok::RParen, "')' to close the result types"))
          return false;
      } else {
        TensorType t;
        if (!parseTensorType(t))
          return false;
        results.push_back(t);
      }
    }
    Location loc = locOf(at);
    if (!parseOptionalLoc(loc))
      return false;
    auto f = std::make_unique<Function>(name, loc);
    PendingBody body;
    for (auto &[an, t] : args)
      body.args[an] = f->addArgument(t, an);
    f->setResultTypes(results);
    if (tok_.kind != Tok::LBrace)
      return error("expected '{' to start the function body, got " + describe(tok_));
    body.bodyStart = lex_.pos();
    // Skip the body now (balanced braces, token-wise so strings are respected).
    int depth = 1;
    consume();
    while (depth > 0) {
      if (tok_.kind == Tok::Eof)
        return error(at, "function @" + name + " is missing its closing '}'");
      if (tok_.kind == Tok::Error)
        return error(tok_.text);
      if (tok_.kind == Tok::LBrace)
        ++depth;
      else if (tok_.kind == Tok::RBrace)
        --depth;
      consume();
    }
    Function *fn = module_->addFunction(std::move(f));
    if (!fn)
      return error(nameAt, "redefinition of function @" + name);
    body.func = fn;
    bodies_.push_back(std::move(body));
    return true;
  }

  bool parseBody(PendingBody &b) {
    std::map<std::string, Value *> &scope = b.args;
    while (tok_.kind != Tok::RBrace) {
      if (tok_.kind == Tok::Eof)
        return error("expected '}' to close function @" + b.func->name());
      if (!parseOp(*b.func, scope))
        return false;
    }
    return true;
  }

  bool parseOp(Function &f, std::map<std::string, Value *> &scope) {
    std::vector<std::pair<std::string, const char *>> resultNames;
    if (tok_.kind == Tok::ValueId) {
      while (true) {
        if (tok_.kind != Tok::ValueId)
          return error("expected a result name '%name', got " + describe(tok_));
        resultNames.push_back({tok_.text, tok_.begin});
        consume();
        if (tok_.kind != Tok::Comma)
          break;
        consume();
      }
      if (!expect(Tok::Equal, "'=' after the result names"))
        return false;
    }
    if (tok_.kind != Tok::Ident)
      return error("expected an op name, got " + describe(tok_));
    const char *opAt = tok_.begin;
    std::string opName = tok_.text;
    const OpDef *def = OpRegistry::get().lookup(opName);
    if (!def)
      return error(opAt, "unknown op '" + opName + "'");
    consume();
    auto op = std::make_unique<Operation>(def, locOf(opAt));
    // Operands start on the op's line: an op without operands is followed by the next statement.
    std::vector<Value *> operands;
    std::vector<std::string> symbols;
    if ((tok_.kind == Tok::ValueId || tok_.kind == Tok::Symbol) && !tok_.newlineBefore) {
      while (true) {
        if (tok_.kind == Tok::ValueId) {
          if (!symbols.empty())
            return error("SSA operands must come before weight symbols");
          auto it = scope.find(tok_.text);
          if (it == scope.end())
            return error("use of undefined value %" + tok_.text);
          operands.push_back(it->second);
        } else if (tok_.kind == Tok::Symbol) {
          symbols.push_back(tok_.text);
        } else {
          return error("expected an operand, got " + describe(tok_));
        }
        consume();
        if (tok_.kind != Tok::Comma)
          break;
        consume();
      }
    }
    op->setOperands(operands);
    op->setSymbols(symbols);
    if (tok_.kind == Tok::LBrace && !parseAttrDict(op->attrs()))
      return false;
    std::vector<TensorType> declared;
    bool hasDeclared = false;
    if (tok_.kind == Tok::Colon) {
      consume();
      hasDeclared = true;
      while (true) {
        TensorType t;
        if (!parseTensorType(t))
          return false;
        declared.push_back(t);
        if (tok_.kind != Tok::Comma)
          break;
        consume();
      }
    }
    Location loc = op->loc();
    if (!parseOptionalLoc(loc))
      return false;
    op->setLoc(loc);
    std::string err;
    auto types = inferResultTypes(*op, *module_, hasDeclared ? &declared : nullptr, err);
    if (!types)
      return error(opAt, err);
    const std::vector<TensorType> &resultTypes = hasDeclared ? declared : *types;
    if (resultNames.size() != resultTypes.size())
      return error(opAt, "'" + opName + "' has " + std::to_string(resultTypes.size()) +
                             " result(s) but " + std::to_string(resultNames.size()) +
                             " name(s) are bound");
    for (size_t i = 0; i < resultTypes.size(); ++i) {
      const auto &[rn, rnAt] = resultNames[i];
      if (scope.count(rn))
        return error(rnAt, "redefinition of value %" + rn);
      scope[rn] = op->addResult(resultTypes[i], rn);
    }
    f.append(std::move(op));
    return true;
  }

  llvm::SourceMgr &sm_;
  unsigned bufId_;
  DiagnosticEngine &diag_;
  Lexer lex_;
  std::string file_;
  Token tok_;
  std::unique_ptr<Module> module_;
  std::vector<PendingBody> bodies_;
};

} // namespace

std::unique_ptr<Module> parseModule(llvm::SourceMgr &sm, unsigned bufferId, DiagnosticEngine &diag) {
  Parser p(sm, bufferId, diag);
  return p.parse();
}

std::unique_ptr<Module> parseModuleString(llvm::StringRef text, llvm::StringRef name,
                                          llvm::SourceMgr &sm, DiagnosticEngine &diag) {
  unsigned id = sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, name), llvm::SMLoc());
  if (!diag.sourceMgr())
    diag.setSourceMgr(&sm);
  return parseModule(sm, id, diag);
}

} // namespace qlc
