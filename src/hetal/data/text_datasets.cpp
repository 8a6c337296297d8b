#include "hetal/data/text_datasets.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "hetal/data/files.h"

namespace hetal::data {

namespace {

/// Splits a file's bytes into lines ('\n'; a trailing '\r' is dropped); a final newline does not
/// start another line.
std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  std::size_t at = 0;
  while (at < s.size()) {
    std::size_t end = s.find('\n', at);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    at = end + 1;
  }
  return lines;
}

std::string read_text(const std::string& path) {
  const std::vector<unsigned char> bytes = read_bytes(path);
  if (bytes.empty()) fail(path, "empty file");
  return std::string(bytes.begin(), bytes.end());
}

[[noreturn]] void fail_line(const std::string& path, std::size_t line, const std::string& what) {
  fail(path, "line " + std::to_string(line) + ": " + what);
}

/// Class indices by name; new names are appended only when `open`.
class ClassIndex {
 public:
  ClassIndex(const std::vector<std::string>& names, bool open) : names_(names), open_(open) {
    for (std::size_t i = 0; i < names_.size(); ++i) index_.emplace(names_[i], i);
  }
  /// The class of `name`, or npos if it is unknown and the set is closed.
  std::size_t find_or_add(const std::string& name) {
    if (auto it = index_.find(name); it != index_.end()) return it->second;
    if (!open_) return std::string::npos;
    index_.emplace(name, names_.size());
    names_.push_back(name);
    return names_.size() - 1;
  }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> index_;
  bool open_;
};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string shorten(std::string_view s) {
  return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 37)) + "...";
}

// ---- ARFF ---------------------------------------------------------------------------------

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

struct ArffValue {
  std::string text;
  bool quoted = false;
  bool missing() const { return !quoted && text == "?"; }
};

/// Reads comma-separated values up to `end_char` (0: the end of the line); values are quoted
/// ('...' or "...", Java escapes) or bare (trimmed). Throws a message without the location,
/// which the caller adds. `pos` is left after `end_char`.
std::vector<ArffValue> parse_values(std::string_view s, std::size_t& pos, char end_char) {
  std::vector<ArffValue> values;
  for (;;) {
    while (pos < s.size() && is_space(s[pos])) ++pos;
    ArffValue v;
    if (pos < s.size() && (s[pos] == '\'' || s[pos] == '"')) {
      const char q = s[pos++];
      v.quoted = true;
      bool closed = false;
      while (pos < s.size()) {
        char c = s[pos++];
        if (c == q) {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (pos == s.size()) break;
          c = s[pos++];
          switch (c) {
            case 'n':
              c = '\n';
              break;
            case 't':
              c = '\t';
              break;
            case 'r':
              c = '\r';
              break;
            default:
              break;  // \' \" \\ and anything else: the character itself
          }
        }
        v.text += c;
      }
      if (!closed) throw std::invalid_argument(std::string("unterminated ") + q + "-quoted value");
      while (pos < s.size() && is_space(s[pos])) ++pos;
      if (pos < s.size() && s[pos] != ',' && s[pos] != end_char)
        throw std::invalid_argument("unexpected text after a quoted value: '" +
                                    shorten(s.substr(pos)) + "'");
    } else {
      std::size_t end = pos;
      while (end < s.size() && s[end] != ',' && s[end] != end_char) {
        if (s[end] == '\'' || s[end] == '"')
          throw std::invalid_argument("quote inside an unquoted value: '" + shorten(s.substr(pos)) +
                                      "'");
        ++end;
      }
      v.text = std::string(trim(s.substr(pos, end - pos)));
      pos = end;
    }
    values.push_back(std::move(v));
    if (pos >= s.size()) {
      if (end_char != 0) throw std::invalid_argument(std::string("missing '") + end_char + "'");
      return values;
    }
    if (s[pos++] == end_char && end_char != 0) return values;
  }
}

struct ArffAttribute {
  std::string name;
  bool is_string = false;
  std::vector<std::string> nominal;  // non-empty for a nominal attribute
};

ArffAttribute parse_attribute(std::string_view rest) {
  ArffAttribute a;
  std::size_t pos = 0;
  while (pos < rest.size() && is_space(rest[pos])) ++pos;
  if (pos < rest.size() && (rest[pos] == '\'' || rest[pos] == '"')) {
    const std::size_t close = rest.find(rest[pos], pos + 1);
    if (close == std::string_view::npos) throw std::invalid_argument("unterminated attribute name");
    a.name = std::string(rest.substr(pos + 1, close - pos - 1));
    pos = close + 1;
  } else {
    const std::size_t start = pos;
    while (pos < rest.size() && !is_space(rest[pos]) && rest[pos] != '{') ++pos;
    a.name = std::string(rest.substr(start, pos - start));
  }
  if (a.name.empty()) throw std::invalid_argument("attribute without a name");
  const std::string_view type = trim(rest.substr(pos));
  if (type.empty()) throw std::invalid_argument("attribute '" + a.name + "' has no type");
  if (type.front() == '{') {
    std::size_t p = 1;
    for (ArffValue& v : parse_values(type, p, '}')) {
      if (v.text.empty()) throw std::invalid_argument("empty nominal value in '" + a.name + "'");
      a.nominal.push_back(std::move(v.text));
    }
    if (!trim(type.substr(p)).empty())
      throw std::invalid_argument("unexpected text after the nominal values of '" + a.name + "'");
  } else {
    const std::string_view word = type.substr(0, std::min(type.find_first_of(" \t"), type.size()));
    if (iequals(word, "string")) {
      a.is_string = true;
    } else if (iequals(word, "relational")) {
      throw std::invalid_argument("relational attributes are not supported");
    } else if (!iequals(word, "numeric") && !iequals(word, "real") && !iequals(word, "integer") &&
               !iequals(word, "date")) {
      throw std::invalid_argument("unknown type '" + std::string(word) + "' of attribute '" +
                                  a.name + "'");
    }
  }
  return a;
}

std::string_view keyword(std::string_view line) {
  return line.substr(0, std::min(line.find_first_of(" \t"), line.size()));
}

// ---- built-in sets ------------------------------------------------------------------------

/// Reuters-21578 keeps SGML entities: the markup characters and the control characters that
/// framed each article (&#2; &#3; ...), which would otherwise become the token "3".
std::string decode_reuters_entities(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      const std::size_t semi = s.find(';', i);
      if (semi != std::string::npos && semi - i <= 6) {
        const std::string_view ent(s.data() + i + 1, semi - i - 1);
        const char* rep = ent == "lt" ? "<" : ent == "gt" ? ">" : ent == "amp" ? "&" : nullptr;
        const bool numeric =
            ent.size() >= 2 && ent[0] == '#' && std::all_of(ent.begin() + 1, ent.end(), [](char c) {
              return std::isdigit(static_cast<unsigned char>(c)) != 0;
            });
        if (rep != nullptr || numeric) {
          out += rep != nullptr ? rep : " ";
          i = semi;
          continue;
        }
      }
    }
    out += s[i];
  }
  return out;
}

struct Builtin {
  const char* name;
  const char* pattern;               // relative to the data root; {} is replaced by the split
  std::vector<std::string> classes;  // fixed so that train and test agree (TSV only)
};

const std::vector<Builtin>& builtins() {
  static const std::vector<Builtin> table = {
      {"fine-foods", "text/fine_foods/{}.tsv", {"great", "other"}},
      {"reuters-corn", "text/reuters/ReutersCorn-{}.arff", {}},
      {"reuters-grain", "text/reuters/ReutersGrain-{}.arff", {}},
      {"austen",
       "text/austen/{}.tsv",
       {"emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
        "sensesensibility"}},
  };
  return table;
}

}  // namespace

TextDataset load_text_tsv(const std::string& path, const std::vector<std::string>& class_names) {
  const std::string content = read_text(path);
  ClassIndex classes(class_names, class_names.empty());
  TextDataset d;
  const std::vector<std::string_view> lines = split_lines(content);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.empty()) fail_line(path, i + 1, "empty line (expected label<TAB>text)");
    const std::size_t tab = line.find('\t');
    if (tab == std::string_view::npos)
      fail_line(path, i + 1, "1 column, expected 2 (label<TAB>text)");
    if (const auto n = std::count(line.begin(), line.end(), '\t'); n != 1)
      fail_line(path, i + 1, std::to_string(n + 1) + " columns, expected 2 (label<TAB>text)");
    const std::string label(line.substr(0, tab));
    if (label.empty()) fail_line(path, i + 1, "empty label");
    const std::size_t c = classes.find_or_add(label);
    if (c == std::string::npos)
      fail_line(
          path, i + 1,
          "unknown label '" + shorten(label) + "' (expected " + join(class_names, ", ") + ")");
    d.texts.emplace_back(line.substr(tab + 1));
    d.labels.push_back(c);
  }
  d.class_names = classes.names();
  return d;
}

TextDataset load_text_arff(const std::string& path) {
  const std::string content = read_text(path);
  const std::vector<std::string_view> lines = split_lines(content);
  std::vector<ArffAttribute> attributes;
  std::size_t i = 0;
  bool in_data = false;
  for (; i < lines.size() && !in_data; ++i) {
    const std::string_view line = trim(lines[i]);
    if (line.empty() || line.front() == '%') continue;
    const std::string_view key = keyword(line);
    try {
      if (iequals(key, "@relation")) continue;
      if (iequals(key, "@attribute")) {
        attributes.push_back(parse_attribute(line.substr(key.size())));
      } else if (iequals(key, "@data")) {
        in_data = true;
      } else {
        throw std::invalid_argument("expected @relation, @attribute or @data, found '" +
                                    shorten(line) + "'");
      }
    } catch (const std::invalid_argument& e) {
      fail_line(path, i + 1, e.what());
    }
  }
  if (!in_data) fail(path, "no @data section (not an ARFF file?)");
  std::size_t text_attr = attributes.size(), class_attr = attributes.size();
  for (std::size_t a = 0; a < attributes.size(); ++a) {
    if (attributes[a].is_string && text_attr == attributes.size()) text_attr = a;
    if (!attributes[a].nominal.empty()) class_attr = a;
  }
  if (text_attr == attributes.size()) fail(path, "no string attribute (the text) in the header");
  if (class_attr == attributes.size())
    fail(path, "no nominal attribute (the class, e.g. {0,1}) in the header");

  TextDataset d;
  ClassIndex classes(attributes[class_attr].nominal, false);
  for (; i < lines.size(); ++i) {
    const std::string_view line = trim(lines[i]);
    if (line.empty() || line.front() == '%') continue;
    if (line.front() == '{') fail_line(path, i + 1, "sparse rows are not supported");
    std::vector<ArffValue> values;
    try {
      std::size_t pos = 0;
      values = parse_values(line, pos, 0);
    } catch (const std::invalid_argument& e) {
      fail_line(path, i + 1, e.what());
    }
    if (values.size() != attributes.size())
      fail_line(path, i + 1,
                std::to_string(values.size()) + " values, expected " +
                    std::to_string(attributes.size()) + " (one per attribute)");
    const ArffValue& cls = values[class_attr];
    if (cls.missing() || cls.text.empty()) fail_line(path, i + 1, "missing class");
    const std::size_t c = classes.find_or_add(cls.text);
    if (c == std::string::npos)
      fail_line(path, i + 1,
                "class '" + shorten(cls.text) + "' is not declared (" +
                    join(attributes[class_attr].nominal, ",") + ")");
    if (values[text_attr].missing()) fail_line(path, i + 1, "missing text");
    d.texts.push_back(std::move(values[text_attr].text));
    d.labels.push_back(c);
  }
  if (d.texts.empty()) fail(path, "no data rows after @data");
  d.class_names = classes.names();
  return d;
}

std::vector<std::string> builtin_text_datasets() {
  std::vector<std::string> names;
  for (const Builtin& b : builtins()) names.emplace_back(b.name);
  return names;
}

TextDataset load_builtin_text(const std::string& name, const std::string& split,
                              const std::string& data_root) {
  const auto& table = builtins();
  const auto it =
      std::find_if(table.begin(), table.end(), [&](const Builtin& b) { return name == b.name; });
  if (it == table.end())
    throw std::invalid_argument("unknown text data set '" + name +
                                "' (known: " + join(builtin_text_datasets(), ", ") + ")");
  if (split != "train" && split != "test")
    throw std::invalid_argument("unknown split '" + split + "' of '" + name +
                                "' (expected train or test)");
  std::string relative = it->pattern;
  relative.replace(relative.find("{}"), 2, split);
  const std::filesystem::path file = find_data(relative, data_root);
  if (file.empty() || !is_file(file)) {
    std::vector<std::string> looked;
    for (const auto& root : data_roots(data_root)) {
      looked.push_back((root / relative).string());
      looked.push_back((root / "data" / relative).string());
    }
    throw std::invalid_argument("text data set '" + name + "' (" + split +
                                ") is not installed: " + relative + " not found (looked at " +
                                join(looked, ", ") + "); run scripts/setup.sh");
  }
  if (file.extension() == ".tsv") return load_text_tsv(file.string(), it->classes);
  TextDataset d = load_text_arff(file.string());
  for (std::string& t : d.texts) t = decode_reuters_entities(t);
  return d;
}

}  // namespace hetal::data
