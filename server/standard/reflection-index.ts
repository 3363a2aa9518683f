import { type DescEnum, type DescExtension, type DescFile, type DescMessage, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * What reflection knows: the services it lists and every file they need,
 * indexed by file name, by symbol and by extension.
 */
export interface ReflectionIndex {
  readonly serviceNames: readonly string[];
  fileByName(name: string): DescFile | undefined;
  fileBySymbol(symbol: string): DescFile | undefined;
  fileByExtension(extendee: string, number: number): DescFile | undefined;
  extensionNumbers(extendee: string): number[] | undefined;
  /** The serialized FileDescriptorProto of a file. */
  bytesOf(file: DescFile): Uint8Array;
}

/**
 * Indexes the given services and, transitively, the files they are declared
 * in and those files' imports.
 */
// Longer than 60 lines: a factory: the methods it returns are short closures over the state they share, which splitting it would have to pass around.
export function createReflectionIndex(services: readonly DescService[]): ReflectionIndex {
  const files = new Map<string, DescFile>();
  const symbols = new Map<string, DescFile>();
  const extensions = new Map<string, Map<number, DescFile>>();
  const bytes = new Map<DescFile, Uint8Array>();

  const addExtensions = (list: readonly DescExtension[], file: DescFile) => {
    for (const ext of list) {
      symbols.set(ext.typeName, file);
      const byNumber = extensions.get(ext.extendee.typeName) ?? new Map<number, DescFile>();
      byNumber.set(ext.number, file);
      extensions.set(ext.extendee.typeName, byNumber);
    }
  };
  const addEnums = (list: readonly DescEnum[], file: DescFile) => {
    for (const e of list) symbols.set(e.typeName, file);
  };
  const addMessages = (list: readonly DescMessage[], file: DescFile) => {
    for (const m of list) {
      symbols.set(m.typeName, file);
      addMessages(m.nestedMessages, file);
      addEnums(m.nestedEnums, file);
      addExtensions(m.nestedExtensions, file);
    }
  };
  const addFile = (file: DescFile) => {
    const name = file.proto.name;
    if (files.has(name)) return;
    files.set(name, file);
    addMessages(file.messages, file);
    addEnums(file.enums, file);
    addExtensions(file.extensions, file);
    for (const service of file.services) {
      symbols.set(service.typeName, file);
      for (const method of service.methods) {
        symbols.set(`${service.typeName}.${method.name}`, file);
      }
    }
    file.dependencies.forEach(addFile);
  };
  for (const service of services) addFile(service.file);

  return {
    serviceNames: services.map((s) => s.typeName).sort(),
    fileByName: (name) => files.get(name),
    fileBySymbol: (symbol) => symbols.get(symbol.startsWith(".") ? symbol.slice(1) : symbol),
    fileByExtension: (extendee, number) => extensions.get(extendee)?.get(number),
    extensionNumbers: (extendee) => {
      if (!symbols.has(extendee)) return undefined;
      return [...(extensions.get(extendee)?.keys() ?? [])].sort((a, b) => a - b);
    },
    bytesOf(file) {
      let encoded = bytes.get(file);
      if (encoded === undefined) {
        encoded = toBinary(FileDescriptorProtoSchema, file.proto);
        bytes.set(file, encoded);
      }
      return encoded;
    },
  };
}
