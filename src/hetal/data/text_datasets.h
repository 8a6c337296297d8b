// Labelled text data sets (no HE): the label<TAB>text files and Weka ARFF files that
// scripts/setup_text.sh installs under data/text/, and a loader for them by name.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace hetal::data {

/// texts[i] has class labels[i], an index into class_names.
struct TextDataset {
  std::vector<std::string> texts;
  std::vector<std::size_t> labels;
  std::vector<std::string> class_names;
};

/// Reads a label<TAB>text file: one row a line, no header, exactly one tab per row, a non-empty
/// label; the text may be empty; a trailing '\r' is dropped. The classes are `class_names` if
/// given (a label outside them is an error), else the labels in order of first appearance.
/// Errors (std::invalid_argument) name the file, the line and the problem: an empty file, an
/// empty line, a wrong column count, an empty label, an unknown label.
TextDataset load_text_tsv(const std::string& path,
                          const std::vector<std::string>& class_names = {});

/// Reads a Weka ARFF file of text documents: the text is the first `string` attribute, the class
/// the last nominal attribute ({a,b,...}; its declaration order gives class_names); any other
/// attributes are read and ignored. Values may be quoted with ' or " and use Java's backslash
/// escapes (\n, \t, \r, \', \", \\; any other escaped character stands for itself). Comments (%)
/// and blank lines are skipped; sparse rows ({...}) and missing values (?) in the text or the
/// class are errors, as are bad quoting, a wrong value count and an undeclared class value; each
/// error names the file and the line.
TextDataset load_text_arff(const std::string& path);

/// The names load_builtin_text knows: "fine-foods" (Amazon fine-food reviews, great/other, 4000
/// train / 1000 test), "reuters-corn" and "reuters-grain" (Reuters-21578 news articles, 0/1 =
/// not about / about the topic, 1554 / 604), "austen" (lines of Jane Austen's 6 novels, 4800 /
/// 1200, label = novel).
std::vector<std::string> builtin_text_datasets();

/// Loads a set scripts/setup_text.sh installed: split is "train" or "test"; files are looked up
/// with find_data("text/...", data_root). Reuters texts have the SGML entities of the original
/// collection decoded (&lt; &gt; &amp;) and its control-character entities (&#3; ...) blanked.
/// An unknown name or split, or a set that is not installed, is a std::invalid_argument saying
/// where it looked.
TextDataset load_builtin_text(const std::string& name, const std::string& split,
                              const std::string& data_root = "");

}  // namespace hetal::data
