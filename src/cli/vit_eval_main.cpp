// vit-eval: score a checkpoint (or timm-named weights + a config) on an image folder; optionally
// export the weights under timm's names. Metrics go to stdout as JSON Lines, files on request.
#include <cstdio>
#include <fstream>
#include <map>

#include <spdlog/spdlog.h>

#include "cli/cli_common.hpp"
#include "core/parallel.hpp"
#include "train/checkpoint.hpp"
#include "train/config.hpp"
#include "train/evaluator.hpp"
#include "train/fsutil.hpp"
#include "train/safetensors.hpp"
#include "train/signals.hpp"

using namespace vit;

namespace {

// Relabel `folder` with the model's class indices (by name). Unknown classes are an error.
void map_classes_by_name(ImageFolder& folder, const std::vector<std::string>& model_classes) {
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < model_classes.size(); ++i) index[model_classes[i]] = static_cast<int32_t>(i);
  std::string unknown;
  for (const auto& c : folder.classes)
    if (!index.count(c)) unknown += (unknown.empty() ? "" : ", ") + c;
  if (!unknown.empty()) fail(ErrorKind::Data, folder.root, ": classes unknown to the model: ", unknown);
  for (auto& s : folder.samples) s.label = index.at(folder.classes[static_cast<size_t>(s.label)]);
  folder.classes = model_classes;
}

void write_text(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vit-eval: evaluate a vit-train checkpoint on an image folder"};
  app.set_version_flag("--version", std::string("vit-eval ") + VIT_VERSION);
  std::string checkpoint, data, weights, config_path, results_file, predictions_csv, confusion_csv, export_path;
  int64_t batch_size = 256;
  int threads = 0;
  bool by_name = false, allow_nonfinite = false, quiet = false;
  app.add_option("--checkpoint", checkpoint, "checkpoint or best.safetensors written by vit-train");
  app.add_option("--data", data, "image folder (one sub-folder per class)");
  app.add_option("--weights", weights, "timm-named weights (.safetensors), with --config");
  app.add_option("--config", config_path, "config describing the model of --weights");
  app.add_option("--results-file", results_file, "also write the metrics JSON here");
  app.add_option("--predictions-csv", predictions_csv, "write per-image predictions (CSV)");
  app.add_option("--confusion-csv", confusion_csv, "write the confusion matrix (CSV)");
  app.add_option("--export-weights", export_path, "write the model weights under timm names (.safetensors)");
  app.add_option("--batch-size", batch_size, "evaluation batch size")->check(cli::at_least_one());
  app.add_option("--threads", threads, "OpenMP threads (0: all cores)");
  app.add_flag("--map-classes-by-name", by_name, "accept a folder whose classes are a subset of the model's");
  app.add_flag("--allow-nonfinite", allow_nonfinite, "load weights holding NaN/Inf");
  app.add_flag("--json", "stdout is always JSON Lines (accepted for compatibility)");
  app.add_flag("-q,--quiet", quiet, "only warnings and errors on stderr");
  app.add_option("--results-format", "unused")->group("");

  return cli::run_main(app, argc, argv, [&](int& signal) {
    cli::setup_logging(quiet);
    set_num_threads(threads);
    if (checkpoint.empty() == weights.empty())
      fail(ErrorKind::Usage, "give exactly one of --checkpoint FILE or --weights FILE --config C.json");
    if (!weights.empty() && config_path.empty()) fail(ErrorKind::Usage, "--weights needs --config");
    if (data.empty() && export_path.empty()) fail(ErrorKind::Usage, "nothing to do: give --data DIR and/or --export-weights");

    Config config;
    std::vector<std::string> classes;
    StateDict weights_state;
    if (!checkpoint.empty()) {
      CheckpointState ck = load_checkpoint(checkpoint, CheckpointLoadOptions{allow_nonfinite});
      config = parse_config_string(ck.config_json, checkpoint + " (config)");
      classes = ck.classes;
      for (auto& [name, t] : ck.tensors)
        if (name.rfind("model.", 0) == 0) weights_state.emplace_back(name.substr(6), t);
    } else {
      config = parse_config_file(config_path);
      SafeTensors w = read_safetensors(weights, SafeTensorsReadOptions{allow_nonfinite});
      for (const auto& name : w.names) weights_state.emplace_back(name, w.tensors.at(name));
      if (w.metadata.count("classes")) {
        const Json j = Json::parse(w.metadata.at("classes"), nullptr, false);
        if (j.is_array())
          for (const auto& c : j)
            if (c.is_string()) classes.push_back(c.get<std::string>());
      }
    }
    std::optional<ImageFolder> folder;
    if (!data.empty()) {
      folder = scan_image_folder(data);
      if (classes.empty()) classes = folder->classes;
      if (by_name) {
        map_classes_by_name(*folder, classes);
      } else {
        ImageFolder expected;
        expected.classes = classes;
        check_same_classes(expected, *folder, "data folder " + data + " (use --map-classes-by-name for a subset)");
      }
    }
    config.model.num_classes = static_cast<int64_t>(classes.size());
    config.model.image_size = config.data.image_size;
    config.model.channels = config.data.channels;
    if (config.model.num_classes < 1) fail(ErrorKind::Data, "the weights carry no class list: give --data");
    ViT model(config.model, config.train.seed);
    with_source(checkpoint.empty() ? weights : checkpoint,
                [&] { model.load_state_dict(weights_state, /*strict=*/true); });
    spdlog::info("model: {} params, {} classes", model.num_parameters(), classes.size());

    FinalRecord fin;
    fin.status = "completed";
    fin.exit_code = 0;
    if (!export_path.empty()) {
      const StateDict timm = model.state_dict(/*timm_layout=*/true);
      std::vector<std::pair<std::string, const Tensor*>> list;
      for (const auto& [name, t] : timm)
        if (name != "favor_redraws") list.emplace_back(name, &t);
      std::map<std::string, std::string> meta = {
          {"format", "pt"}, {"arch", "vit"}, {"img_size", std::to_string(config.data.image_size)},
          {"classes", dump_json(Json(classes))}, {"mean", dump_json(Json(config.data.mean))},
          {"std", dump_json(Json(config.data.std))}};
      write_text(export_path, serialize_safetensors(list, meta, /*checksum=*/false));
      fin.extra["exported"] = export_path;
      spdlog::info("wrote timm-named weights to {}", export_path);
    }
    if (folder) {
      ImageDataset dataset(std::move(*folder), config.data, [] { return stop_signal() != 0; });
      EvalResult r = evaluate(model, dataset, config.data, batch_size, !predictions_csv.empty(),
                              [] { return stop_signal() != 0; });
      if (r.interrupted) {  // SIGINT/SIGTERM: report, then die by the same signal
        signal = stop_signal();
        fin.status = "interrupted";
        fin.exit_code = 128 + signal;
        return fin;
      }
      Json per_class = Json::object();
      for (size_t k = 0; k < classes.size(); ++k) per_class[classes[k]] = r.per_class_top1[k];
      Json confusion = Json::array();
      const size_t K = classes.size();
      for (size_t i = 0; i < K; ++i)
        confusion.push_back(std::vector<int64_t>(r.confusion.begin() + static_cast<long>(i * K),
                                                 r.confusion.begin() + static_cast<long>((i + 1) * K)));
      Json metrics = {{"count", r.count}, {"loss", r.loss}, {"top1", r.top1}, {"top5", r.top5},
                      {"classes", classes}, {"per_class_top1", per_class}, {"confusion", confusion}};
      JsonLines(stdout).emit("eval", metrics);
      fin.final_eval_top1 = r.top1;
      fin.extra["top1"] = r.top1;
      fin.extra["top5"] = r.top5;
      fin.extra["loss"] = r.loss;
      fin.extra["count"] = r.count;
      spdlog::info("{} images: top-1 {:.2f}% top-5 {:.2f}% loss {:.4f}", r.count, r.top1, r.top5, r.loss);
      if (!results_file.empty()) write_text(results_file, dump_json(metrics) + "\n");
      if (!confusion_csv.empty()) {
        std::string csv = "true\\predicted";
        for (const auto& c : classes) csv += "," + c;
        csv += "\n";
        for (size_t i = 0; i < K; ++i) {
          csv += classes[i];
          for (size_t j = 0; j < K; ++j) csv += "," + std::to_string(r.confusion[i * K + j]);
          csv += "\n";
        }
        write_text(confusion_csv, csv);
      }
      if (!predictions_csv.empty()) {
        std::string csv = "path,label,predicted,confidence\n";
        for (const auto& p : r.predictions) {
          std::string path = dataset.path(p.sample);
          if (path.find_first_of(",\"\n") != std::string::npos) {  // RFC 4180 quoting
            std::string q = "\"";
            for (char ch : path) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
            path = q + "\"";
          }
          csv += path + "," + classes[static_cast<size_t>(p.label)] + "," + classes[static_cast<size_t>(p.predicted)] +
                 "," + std::to_string(p.confidence) + "\n";
        }
        write_text(predictions_csv, csv);
      }
    }
    return fin;
  });
}
