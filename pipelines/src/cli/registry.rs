//! `mlops registry`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Result, bail};
use mlops_core::table::Table;
use step17_registry::{RegisterInfo, Registry, Version};

use crate::output::print_json;
use crate::{Cli, RegistryArgs, RegistryCommand};

pub(crate) fn registry_cmd(cli: &Cli, args: &RegistryArgs) -> Result<ExitCode> {
    // Reading a registry that is not there creates nothing: a mistyped `--store` is named.
    let reads = matches!(
        args.command,
        RegistryCommand::List { .. } | RegistryCommand::Show { .. } | RegistryCommand::History { .. }
    );
    if reads && mlops_core::store::Location::from_path(&args.store).is_missing_file() {
        bail!("registry {}: no registry yet (`mlops train` registers models there)", args.store.display());
    }
    let mut r = Registry::open(&args.store, &args.artifacts, &pipelines::actor())?;
    match &args.command {
        RegistryCommand::List { name: None } => {
            let models = r.models()?;
            if cli.json {
                print_json(&models)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["model", "versions", "latest", "aliases", "updated"]);
            for m in &models {
                let aliases: Vec<String> = m.aliases.iter().map(|(a, v)| format!("{a}={v}")).collect();
                t.row([
                    m.name.clone(),
                    m.versions.to_string(),
                    m.latest.map_or_else(|| "-".into(), |v| v.to_string()),
                    aliases.join(" "),
                    m.updated_at.clone(),
                ]);
            }
            print!("{t}");
            println!("{} model(s) in {}", models.len(), args.store.display());
        }
        RegistryCommand::List { name: Some(name) } => versions(cli, &r.versions(name)?)?,
        RegistryCommand::Show { model } if model.starts_with("models:/") => {
            let v = r.resolve(model)?;
            if cli.json {
                print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            show_version(&v);
        }
        RegistryCommand::Show { model } => {
            let m = r.model(model)?;
            let all = r.versions(model)?;
            if cli.json {
                print_json(&serde_json::json!({ "model": m, "versions": all }))?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} ({} version(s)){}",
                m.name,
                m.versions,
                if m.description.is_empty() { String::new() } else { format!(": {}", m.description) }
            );
            for (k, v) in &m.tags {
                println!("  tag {k}={v}");
            }
            versions(cli, &all)?;
        }
        RegistryCommand::Register { name, package, alias, description, tags } => {
            let mut tag_map = BTreeMap::new();
            for t in tags {
                let Some((k, v)) = t.split_once('=') else { bail!("--tag {t:?}: write KEY=VALUE") };
                tag_map.insert(k.to_string(), v.to_string());
            }
            let v = r.register(name, package, &RegisterInfo { description: description.clone(), tags: tag_map })?;
            if let Some(alias) = alias {
                r.set_alias(name, alias, v.version)?;
            }
            let v = r.version(name, v.version)?;
            if cli.json {
                print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("registered {} version {} (models:/{}/{})", v.name, v.version, v.name, v.version);
            show_version(&v);
        }
        RegistryCommand::Alias { name, alias, delete: true, .. } => {
            let old = r.delete_alias(name, alias)?;
            println!("{name}: alias {alias} removed (it pointed at version {old})");
        }
        RegistryCommand::Alias { name, alias, version, delete: false } => {
            let Some(version) = *version else { bail!("give the version to point {alias} at") };
            match r.set_alias(name, alias, version)? {
                Some(old) if old != version => println!("{name}: {alias} moved from version {old} to {version}"),
                _ => println!("{name}: {alias} -> version {version}"),
            }
        }
        RegistryCommand::Tag { name, key, value, version } => {
            r.set_tag(name, *version, key, value)?;
            println!("{name}{}: {key}={value}", version.map_or_else(String::new, |v| format!(" version {v}")));
        }
        RegistryCommand::Retire { name, version } => {
            r.retire(name, *version)?;
            println!("{name} version {version} retired");
        }
        RegistryCommand::Delete { name, version } => {
            // A misspelt model is named as such, not as a missing version of it.
            r.model(name)?;
            // Its aliases go with the version: say so, as `champion` may have been one of them.
            let aliases = r.version(name, *version)?.aliases;
            r.delete(name, *version)?;
            if aliases.is_empty() {
                println!("{name} version {version} deleted");
            } else {
                println!("{name} version {version} deleted, and with it alias {}", aliases.join(", "));
            }
        }
        RegistryCommand::History { name } => {
            let entries = r.history(name.as_deref())?;
            if cli.json {
                print_json(&entries)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(["#", "when", "who", "model", "version", "action", "from", "to", "why"]);
            for e in &entries {
                t.row([
                    e.seq.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.name.clone(),
                    e.version.map_or_else(|| "-".into(), |v| v.to_string()),
                    e.action.clone(),
                    e.old_value.clone().unwrap_or_default(),
                    e.new_value.clone().unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                ]);
            }
            print!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn versions(cli: &Cli, all: &[Version]) -> Result<()> {
    if cli.json {
        return print_json(&all);
    }
    let mut t = Table::new(["version", "status", "aliases", "run", "dataset", "registered", "package"]);
    for v in all {
        t.row([
            v.version.to_string(),
            format!("{:?}", v.status).to_lowercase(),
            v.aliases.join(" "),
            v.run_id.clone().unwrap_or_default(),
            v.dataset_version.clone().unwrap_or_default(),
            v.created_at.clone(),
            v.package_sha256.chars().take(12).collect(),
        ]);
    }
    print!("{t}");
    Ok(())
}

pub(crate) fn show_version(v: &Version) {
    println!("{} version {}: {:?}", v.name, v.version, v.status);
    for (k, val) in [
        ("aliases", v.aliases.join(" ")),
        ("run", v.run_id.clone().unwrap_or_default()),
        ("dataset", v.dataset_version.clone().unwrap_or_default()),
        ("package", v.artifact_path.display().to_string()),
        ("sha256", v.package_sha256.clone()),
        ("registered", v.created_at.clone()),
    ] {
        println!("  {k:11} {val}");
    }
    for (k, val) in &v.tags {
        println!("  tag         {k}={val}");
    }
    for (k, val) in &v.metrics {
        println!("  {k:28} {val:.4}");
    }
}
